//! Assembling a running agent from its flags: resources, identity, the
//! containerizer, the HTTP server (libprocess messages, executor API,
//! operator endpoints, `/files`) and the state machine.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use mesos_proto::v1::AgentInfo;
use mesos_transport::{Sender, Upid};
use tokio::task::JoinHandle;

use crate::containers::Containers;
use crate::files::Files;
use crate::flags::{Flags, FlagsError};
use crate::master_link::parse_master_address;
use crate::paths::WorkDir;
use crate::posix_containers::PosixContainers;
use crate::resources::{agent_resources, HostFacts, ResourcesError};
use crate::slave::recovery::RecoveryError;
use crate::slave::{SlaveConfig, SlaveHandle};
use crate::state::{State, StateError};

/// The agent's libprocess process name.
pub const PROCESS: &str = "slave(1)";

/// Why the agent could not start; every variant names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A flag is invalid.
    #[error(transparent)]
    Flags(#[from] FlagsError),
    /// `--resources` is invalid or detection failed.
    #[error(transparent)]
    Resources(#[from] ResourcesError),
    /// `--attributes` is invalid.
    #[error(transparent)]
    Attributes(#[from] crate::attributes::AttributesError),
    /// The work directory cannot be created.
    #[error("cannot create --work_dir {path}: {source}")]
    WorkDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The listening socket cannot be bound.
    #[error("cannot listen on {address} (--ip/--port): {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The containerizer could not be set up.
    #[error("cannot set up the {launcher} launcher: {message}")]
    Launcher {
        /// `linux` or `posix`.
        launcher: String,
        /// What failed.
        message: String,
    },
    /// The checkpoint of an earlier run cannot be read (names the file).
    #[error("failed to perform recovery: {error}; {remedy}", remedy = crate::state::REMEDY)]
    Checkpoint {
        /// What is wrong, with the file.
        error: StateError,
    },
    /// The checkpoint describes an agent the flags do not match, or its
    /// updates do not replay.
    #[error("failed to perform recovery: {0}")]
    Recovery(RecoveryError),
    /// The containers of the earlier run could not be recovered.
    #[error("failed to perform recovery: cannot recover containers: {0}")]
    Containers(crate::containers::ContainerError),
}

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    /// Where the agent's HTTP server listens.
    pub address: SocketAddr,
    /// The state machine.
    pub slave: SlaveHandle,
    /// The `/files` table.
    pub files: Arc<Files>,
    server: JoinHandle<()>,
}

impl Agent {
    /// Stops serving (executors are left to their containers).
    pub fn abort(&self) {
        self.server.abort();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn hostname(flags: &Flags) -> String {
    flags.hostname.clone().unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into())
    })
}

/// `--ip`, else the address the hostname resolves to, else loopback.
fn listen_ip(flags: &Flags, hostname: &str) -> IpAddr {
    flags.ip.unwrap_or_else(|| {
        (hostname, 0)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.find(SocketAddr::is_ipv4))
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    })
}

async fn containerizer(flags: &Flags) -> Result<Arc<dyn Containers>, AgentError> {
    let launcher = flags.launcher().to_string();
    if launcher == "posix" {
        return Ok(Arc::new(PosixContainers::new()));
    }
    let error = |message| AgentError::Launcher {
        launcher: launcher.clone(),
        message,
    };
    // Containers of an earlier run are recovered (or destroyed as orphans)
    // once the checkpoint says which ones the agent still knows.
    let containers = crate::mesos_containers::create(flags).map_err(error)?;
    Ok(Arc::new(containers))
}

/// Reads the checkpoint (step 1 of recovery). Unreadable files stop the
/// agent (`--strict`), except with `--recover=cleanup`, which only needs to
/// find what to kill and forgets the rest.
fn read_checkpoint(flags: &Flags) -> Result<State, AgentError> {
    let work_dir = WorkDir::new(&flags.work_dir);
    let boot_id = match crate::checkpoint::current_boot_id() {
        Ok(id) => Some(id),
        Err(error) => {
            tracing::warn!(%error, "cannot read the boot id; assuming no reboot");
            None
        }
    };
    let strict = flags.strict && !flags.cleanup();
    match crate::state::recover(&work_dir, strict, boot_id.as_deref()) {
        Ok(state) => Ok(state),
        Err(error) if flags.cleanup() => {
            tracing::warn!(%error, "unreadable checkpoint; --recover=cleanup forgets it");
            Ok(State::default())
        }
        Err(error) => Err(AgentError::Checkpoint { error }),
    }
}

/// Validates flags, binds the port and starts the agent.
pub async fn start(flags: Flags) -> Result<Agent, AgentError> {
    flags.validate()?;
    std::fs::create_dir_all(&flags.work_dir).map_err(|source| AgentError::WorkDir {
        path: flags.work_dir.clone(),
        source,
    })?;
    // Listen first: executors of an earlier run retrying to reach a
    // restarted agent then wait in the accept queue (and get an answer as
    // soon as the server runs) instead of backing off after a refused
    // connection, which could outlast --executor_reregistration_timeout.
    let hostname = hostname(&flags);
    let ip = listen_ip(&flags, &hostname);
    let requested = SocketAddr::new(ip, flags.port);
    let listener = tokio::net::TcpListener::bind(requested)
        .await
        .map_err(|source| AgentError::Bind {
            address: requested,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| AgentError::Bind {
        address: requested,
        source,
    })?;
    let facts = HostFacts::gather(&flags.work_dir)?;
    let resources = agent_resources(flags.resources.as_deref(), &flags.default_role, &facts)?;
    let attributes = match &flags.attributes {
        Some(text) => crate::attributes::parse(text)?,
        None => Vec::new(),
    };
    // Before anything touches a container: a checkpoint that cannot be read
    // leaves the executors of the earlier run alone.
    let checkpoint = read_checkpoint(&flags)?;
    let containers = containerizer(&flags).await?;
    let advertised = SocketAddr::new(flags.advertise_ip.unwrap_or(ip), address.port());
    let upid = Upid::new(PROCESS, advertised);
    let master_address =
        parse_master_address(&flags.master).ok_or_else(|| FlagsError::Invalid {
            flag: "master",
            message: format!("cannot resolve '{}'", flags.master),
        })?;
    let info = AgentInfo {
        hostname,
        port: Some(i32::from(address.port())),
        resources,
        attributes,
        ..AgentInfo::default()
    };
    let config = SlaveConfig {
        work_dir: WorkDir::new(&flags.work_dir),
        launcher_dir: flags.launcher_dir(),
        master: Upid::new("master", master_address),
        upid: upid.clone(),
        info,
        flags,
    };
    let files = Arc::new(Files::new());
    let sender = Sender::new(upid.clone());
    let slave = SlaveHandle::new(config, Arc::new(sender), containers.clone(), files.clone());
    let known = slave
        .lock()
        .begin_recovery(checkpoint)
        .map_err(AgentError::Recovery)?;
    // Executors retrying to subscribe meanwhile get 503 until their
    // containers are recovered.
    let router = routes(&slave, &files);
    let server = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "HTTP server failed");
        }
    });
    tracing::info!(pid = %upid, known = known.len(), "agent started; recovering");
    let recovered = match containers.recover(known).await {
        Ok(recovered) => recovered,
        Err(error) => {
            server.abort();
            return Err(AgentError::Containers(error));
        }
    };
    slave.lock().containers_recovered(recovered);
    slave.start();
    Ok(Agent {
        address,
        slave,
        files,
        server,
    })
}

/// Every route the agent serves.
pub fn routes(slave: &SlaveHandle, files: &Arc<Files>) -> axum::Router {
    let for_messages = slave.clone();
    mesos_transport::routes(PROCESS, move |message| {
        for_messages.lock().handle_message(message);
    })
    .merge(crate::executor_api::router(slave.clone()))
    .merge(crate::http::router(slave.clone()))
    .merge(crate::files::router(files.clone()))
}
