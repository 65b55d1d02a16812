//! The master state machine: one tokio task owns all state ([`Master`]) and
//! handles `Command`s one at a time, in arrival order. HTTP handlers and
//! the libprocess transport only translate requests into commands, so every
//! decision is sequential and deterministic for a given input order, like
//! the libprocess actor Mesos's master is.
//!
//! What must survive a restart (admitted agents, frameworks) is also
//! written to the registry ([`crate::registry`]) through the registrar
//! (`registrar.rs`), which runs on its own thread and reports back
//! with commands; everything else is rebuilt from agents re-registering and
//! frameworks re-subscribing (`recovery.rs`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mesos_proto::codec::{self, ContentType};
use mesos_proto::recordio;
use mesos_proto::v1::scheduler::{event, Event};
use mesos_proto::v1::{self, Address, AgentInfo, MasterInfo};
use mesos_transport::{Sender, Upid};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::agents::Agent;
use crate::allocator::Allocator;
use crate::flags::Flags;
use crate::frameworks::Framework;
use crate::http::HttpError;
use crate::metrics::Metrics;
use crate::offers::OfferEntry;
use crate::registrar::{self, Continuation, Registrar};
use crate::registry::{OperationError, Registry, RegistryError, Store};

/// The Mesos release whose behaviour and wire protocol this master follows.
pub const MESOS_VERSION: &str = "1.11.0";

/// `DEFAULT_HEARTBEAT_INTERVAL` (src/master/constants.hpp).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// Why the master could not start.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// The listening socket could not be bound.
    #[error("failed to bind {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The flags are inconsistent.
    #[error("{0}")]
    Flags(String),
    /// The registry could not be recovered, or a write failed later.
    #[error("{0}")]
    Registry(#[from] RegistryError),
    /// The registrar thread could not be started.
    #[error("cannot start the registrar thread: {0}")]
    Registrar(std::io::Error),
    /// Too many agents recovered from the registry did not re-register
    /// (`--recovery_agent_removal_limit`).
    #[error(
        "post-recovery agent removal limit exceeded: {missing} of {total} agents recovered \
         from the registry did not re-register (see --recovery_agent_removal_limit)"
    )]
    RemovalLimit {
        /// Agents that did not re-register.
        missing: usize,
        /// Agents the registry listed.
        total: usize,
    },
}

/// A request for the master task.
pub(crate) enum Command {
    /// A SUBSCRIBE call (already validated at the HTTP level).
    Subscribe {
        call: Box<v1::scheduler::Call>,
        content_type: ContentType,
        reply: oneshot::Sender<Subscription>,
    },
    /// Any other scheduler call.
    Call {
        call: Box<v1::scheduler::Call>,
        stream_id: Option<String>,
        reply: oneshot::Sender<Result<(), HttpError>>,
    },
    /// A subscriber's HTTP stream went away.
    StreamClosed {
        framework_id: String,
        stream_id: String,
    },
    /// A libprocess message from an agent.
    Message(mesos_transport::Message),
    /// Run the allocator now (batched trigger).
    Allocate,
    /// `--offer_timeout` expired for an offer.
    OfferTimeout { offer_id: String },
    /// A disconnected framework's failover timeout expired.
    FailoverTimeout { framework_id: String, epoch: u64 },
    /// Run a closure on the state (operator endpoints, tests).
    Inspect(Box<dyn FnOnce(&mut Master) + Send>),
    /// The registrar read the registry (or failed to).
    Recovered(Result<Registry, RegistryError>),
    /// A registry operation is durable (or did not apply): continue.
    Registered {
        result: Result<(), OperationError>,
        then: Continuation,
    },
    /// A registry write failed: the master must stop.
    RegistryFailed(RegistryError),
    /// A registry write took this long (`registrar/state_store_ms`).
    RegistryStored(Duration),
    /// `--agent_reregister_timeout` after recovery expired; `expected`
    /// agents were recovered from the registry.
    ReregisterTimeout { expected: usize },
}

/// The answer to SUBSCRIBE: the stream of encoded RecordIO records.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub stream_id: String,
    pub framework_id: Option<String>,
    pub events: mpsc::UnboundedReceiver<Bytes>,
}

/// All master state. See the module documentation.
pub struct Master {
    pub(crate) flags: Flags,
    pub(crate) info: MasterInfo,
    pub(crate) upid: Upid,
    pub(crate) sender: Sender,
    /// Our own mailbox, for timers and batched allocation.
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) allocator: Allocator,
    pub(crate) frameworks: BTreeMap<String, Framework>,
    pub(crate) completed_frameworks: VecDeque<Framework>,
    pub(crate) agents: BTreeMap<String, Agent>,
    /// Agents the registry lists as admitted that have not re-registered
    /// since this master started (Mesos's `slaves.recovered`).
    pub(crate) recovered_agents: BTreeMap<String, AgentInfo>,
    /// Agents marked unreachable, by id, with the time (registry-backed).
    pub(crate) unreachable_agents: BTreeMap<String, f64>,
    /// Agents that unregistered, by id, with the time.
    pub(crate) removed_agents: BTreeMap<String, f64>,
    /// Agents whose registration (by pid), re-registration or transition
    /// to unreachable (by id) waits for the registry.
    pub(crate) registering: BTreeSet<String>,
    pub(crate) reregistering: BTreeSet<String>,
    pub(crate) marking_unreachable: BTreeSet<String>,
    /// Ids of removed frameworks; they may not subscribe again.
    pub(crate) removed_frameworks: BTreeSet<String>,
    pub(crate) registrar: Registrar,
    /// Set once the registry is recovered; until then the scheduler API
    /// answers 503 and agent messages are dropped (shared with HTTP).
    pub(crate) recovered: Arc<AtomicBool>,
    /// Where to report the outcome of recovery (to `start`).
    pub(crate) recovery: Option<oneshot::Sender<Result<(), RegistryError>>>,
    /// A fatal error: the master task stops with it.
    pub(crate) fatal: Option<MasterError>,
    pub(crate) offers: BTreeMap<String, OfferEntry>,
    pub(crate) next_framework: u64,
    pub(crate) next_agent: u64,
    pub(crate) next_offer: u64,
    pub(crate) metrics: Metrics,
    pub(crate) start_time: f64,
}

impl std::fmt::Debug for Master {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Master")
            .field("id", &self.info.id)
            .field("upid", &self.upid)
            .field("frameworks", &self.frameworks.len())
            .field("agents", &self.agents.len())
            .field("offers", &self.offers.len())
            .finish_non_exhaustive()
    }
}

/// A running master: its address and a way to stop it.
#[derive(Debug)]
pub struct MasterHandle {
    /// The address the HTTP server is bound to.
    pub address: SocketAddr,
    /// The master's UPID (`master@ip:port`), as advertised.
    pub upid: Upid,
    /// The master id (`MasterInfo.id`).
    pub id: String,
    commands: mpsc::UnboundedSender<Command>,
    server: JoinHandle<()>,
    actor: JoinHandle<Result<(), MasterError>>,
    registrar_closed: registrar::Closed,
}

impl MasterHandle {
    /// Stops serving, drops all state and waits until the registry is
    /// closed (so that a new master can open it at once).
    pub async fn shutdown(self) {
        self.server.abort();
        self.actor.abort();
        if !self.server.is_finished() {
            let _ = self.server.await;
        }
        if !self.actor.is_finished() {
            let _ = self.actor.await;
        }
        // Dropping the master dropped the registrar handle: its thread
        // closes the store and exits.
        let _ = self.registrar_closed.await;
    }

    /// Waits until the master stops by itself: the HTTP server failed
    /// (`Ok`), or (`Err`) a registry write failed or too many agents did not
    /// re-register after recovery, where Mesos's master aborts too. Call it
    /// once, then [`MasterHandle::shutdown`].
    pub async fn wait(&mut self) -> Result<(), MasterError> {
        tokio::select! {
            _ = &mut self.server => Ok(()),
            stopped = &mut self.actor => match stopped {
                Ok(Err(error)) => Err(error),
                _ => Ok(()),
            },
        }
    }

    /// Runs `f` on the master state and returns its result (tests, tools).
    pub async fn inspect<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Master) -> T + Send + 'static,
    ) -> Option<T> {
        inspect(&self.commands, f).await
    }
}

/// Runs `f` inside the master task.
pub(crate) async fn inspect<T: Send + 'static>(
    commands: &mpsc::UnboundedSender<Command>,
    f: impl FnOnce(&mut Master) -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    let command = Command::Inspect(Box::new(move |master| {
        let _ = tx.send(f(master));
    }));
    commands.send(command).ok()?;
    rx.await.ok()
}

/// Binds the HTTP server, starts the master task and recovers the registry
/// that `--registry` and `--work_dir` name. Returns once recovery is done
/// (the scheduler API answers 503 until then), or with the reason it
/// failed, e.g. a corrupt registry file.
pub async fn start(flags: Flags) -> Result<MasterHandle, MasterError> {
    flags.validate().map_err(MasterError::Flags)?;
    let store = crate::registry::store_for(&flags);
    start_with_store(flags, store).await
}

/// [`start`] with the registry in `store` (embedding, tests).
pub async fn start_with_store(
    flags: Flags,
    store: Box<dyn Store>,
) -> Result<MasterHandle, MasterError> {
    flags.validate().map_err(MasterError::Flags)?;
    if flags.agent_reregister_timeout < crate::flags::MIN_AGENT_REREGISTER_TIMEOUT {
        tracing::warn!(
            "--agent_reregister_timeout={} is below Mesos's minimum of 10mins: agents \
             backing off their re-registration may be marked unreachable",
            crate::flags::format_duration(flags.agent_reregister_timeout)
        );
    }
    let bind = SocketAddr::new(
        flags.ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        flags.port,
    );
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|source| MasterError::Bind {
            address: bind,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| MasterError::Bind {
        address: bind,
        source,
    })?;
    let advertised = SocketAddr::new(
        flags
            .advertise_ip
            .or(flags.ip.filter(|ip| !ip.is_unspecified()))
            .unwrap_or_else(default_ip),
        flags.advertise_port.unwrap_or(address.port()),
    );
    let upid = Upid::new("master", advertised);
    // A new id on every start, as Mesos does: agent and framework ids
    // embed the id of the master that made them, so they stay unique
    // across restarts without persisting a counter.
    let id = uuid::Uuid::new_v4().to_string();
    let info = master_info(&id, &upid, &hostname(&flags, &upid));
    let (commands, mailbox) = mpsc::unbounded_channel();
    let (registrar, registrar_closed) =
        Registrar::start(store, info.clone(), commands.clone()).map_err(MasterError::Registrar)?;
    let (recovery, recovered) = oneshot::channel();
    let recovered_flag = Arc::new(AtomicBool::new(false));
    let parts = Parts {
        flags,
        info,
        upid: upid.clone(),
        commands: commands.clone(),
        registrar,
        recovered: recovered_flag.clone(),
        recovery,
    };
    let master = Master::new(parts);
    tracing::info!(%upid, %id, "master started; recovering the registry");
    let actor = tokio::spawn(master.run(mailbox));
    let app = crate::http::router(commands.clone(), upid.clone(), recovered_flag);
    let server = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "HTTP server failed");
        }
    });
    let handle = MasterHandle {
        address,
        upid,
        id,
        commands,
        server,
        actor,
        registrar_closed,
    };
    match recovered.await {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(error)) => {
            handle.shutdown().await;
            Err(MasterError::Registry(error))
        }
        Err(_) => {
            handle.shutdown().await;
            Err(MasterError::Registry(RegistryError::Stopped))
        }
    }
}

/// What [`Master::new`] is made of.
struct Parts {
    flags: Flags,
    info: MasterInfo,
    upid: Upid,
    commands: mpsc::UnboundedSender<Command>,
    registrar: Registrar,
    recovered: Arc<AtomicBool>,
    recovery: oneshot::Sender<Result<(), RegistryError>>,
}

/// The hostname advertised in MasterInfo.
fn hostname(flags: &Flags, upid: &Upid) -> String {
    flags.hostname.clone().unwrap_or_else(|| {
        if flags.hostname_lookup {
            system_hostname().unwrap_or_else(|| upid.address.ip().to_string())
        } else {
            upid.address.ip().to_string()
        }
    })
}

impl Master {
    fn new(parts: Parts) -> Self {
        let Parts {
            flags,
            info,
            upid,
            commands,
            registrar,
            recovered,
            recovery,
        } = parts;
        Master {
            allocator: Allocator::new(flags.allocator_config()),
            sender: Sender::new(upid.clone()),
            flags,
            info,
            upid,
            commands,
            frameworks: BTreeMap::new(),
            completed_frameworks: VecDeque::new(),
            agents: BTreeMap::new(),
            recovered_agents: BTreeMap::new(),
            unreachable_agents: BTreeMap::new(),
            removed_agents: BTreeMap::new(),
            registering: BTreeSet::new(),
            reregistering: BTreeSet::new(),
            marking_unreachable: BTreeSet::new(),
            removed_frameworks: BTreeSet::new(),
            registrar,
            recovered,
            recovery: Some(recovery),
            fatal: None,
            offers: BTreeMap::new(),
            next_framework: 0,
            next_agent: 0,
            next_offer: 0,
            metrics: Metrics::default(),
            start_time: now_secs(),
        }
    }

    /// The master id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// The MasterInfo sent to frameworks (SUBSCRIBED) and shown in `/state`.
    pub fn info(&self) -> &MasterInfo {
        &self.info
    }

    /// Whether the registry has been recovered.
    pub fn is_recovered(&self) -> bool {
        self.recovered.load(Ordering::Acquire)
    }

    async fn run(
        mut self,
        mut mailbox: mpsc::UnboundedReceiver<Command>,
    ) -> Result<(), MasterError> {
        let start = tokio::time::Instant::now();
        let mut allocation = tokio::time::interval_at(
            start + self.flags.allocation_interval,
            self.flags.allocation_interval,
        );
        let mut pings = tokio::time::interval_at(
            start + self.flags.agent_ping_timeout,
            self.flags.agent_ping_timeout,
        );
        let mut heartbeats =
            tokio::time::interval_at(start + HEARTBEAT_INTERVAL, HEARTBEAT_INTERVAL);
        for timer in [&mut allocation, &mut pings, &mut heartbeats] {
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                command = mailbox.recv() => match command {
                    Some(command) => self.handle(command),
                    None => return Ok(()),
                },
                _ = allocation.tick() => {
                    // Periodic run over all agents: re-offers recovered
                    // resources and resources whose filters expired.
                    self.allocator.request(None);
                    self.allocate();
                }
                _ = pings.tick() => self.ping_agents(),
                _ = heartbeats.tick() => self.send_heartbeats(),
            }
            if let Some(error) = self.fatal.take() {
                tracing::error!(%error, "the master stops");
                return Err(error);
            }
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Subscribe {
                call,
                content_type,
                reply,
            } => {
                let subscription = self.subscribe(*call, content_type);
                let _ = reply.send(subscription);
            }
            Command::Call {
                call,
                stream_id,
                reply,
            } => {
                let result = self.handle_call(*call, stream_id);
                let _ = reply.send(result);
            }
            Command::StreamClosed {
                framework_id,
                stream_id,
            } => self.stream_closed(&framework_id, &stream_id),
            Command::Message(message) => {
                if self.is_recovered() {
                    self.handle_message(message);
                } else {
                    // Mesos drops all messages while recovering; agents
                    // retry (re-)registration.
                    tracing::debug!(name = %message.name, "dropping message: not recovered yet");
                    self.metrics.dropped_messages += 1;
                }
            }
            Command::Allocate => self.allocate(),
            Command::OfferTimeout { offer_id } => self.offer_timeout(&offer_id),
            Command::FailoverTimeout {
                framework_id,
                epoch,
            } => self.failover_timeout(&framework_id, epoch),
            Command::Inspect(f) => f(self),
            Command::Recovered(result) => self.recovered_registry(result),
            Command::Registered { result, then } => then(self, result),
            Command::RegistryFailed(error) => self.fatal = Some(MasterError::Registry(error)),
            Command::ReregisterTimeout { expected } => self.reregister_timeout(expected),
            Command::RegistryStored(took) => self.metrics.registry_store.record(took),
        }
    }

    /// Schedules one allocation run behind the commands already queued if
    /// the allocator just became pending (see `allocator::request`).
    pub(crate) fn schedule_allocation(&mut self, became_pending: bool) {
        if became_pending {
            let _ = self.commands.send(Command::Allocate);
        }
    }

    /// Sends a command to ourselves after `delay`.
    pub(crate) fn after(&self, delay: Duration, command: Command) {
        let commands = self.commands.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = commands.send(command);
        });
    }

    /// Encodes and queues `event` on the framework's stream. Returns false
    /// if the framework has no live stream.
    pub(crate) fn send_event(&mut self, framework_id: &str, event: &Event) -> bool {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return false;
        };
        let Some(connection) = &framework.connection else {
            return false;
        };
        let record = encode_event(event, connection.content_type);
        if connection.events.send(record).is_ok() {
            self.metrics.count_event(event);
            return true;
        }
        // The subscriber is gone; the stream's drop guard reports it too,
        // but act at once so nothing more is sent to a dead stream.
        let stream_id = connection.stream_id.clone();
        self.stream_closed(framework_id, &stream_id);
        false
    }

    fn send_heartbeats(&mut self) {
        let connected: Vec<String> = self
            .frameworks
            .iter()
            .filter(|(_, f)| f.connection.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        let heartbeat = Event {
            r#type: Some(event::Type::Heartbeat as i32),
            ..Default::default()
        };
        for id in connected {
            self.send_event(&id, &heartbeat);
        }
    }

    /// Dispatches a libprocess message from an agent.
    fn handle_message(&mut self, message: mesos_transport::Message) {
        use mesos_proto::internal as m;
        let name = message.name.clone();
        let from = message.from.clone();
        let result = match name.as_str() {
            "mesos.internal.RegisterSlaveMessage" => message
                .decode::<m::RegisterSlaveMessage>()
                .map(|msg| self.register_agent(from, msg)),
            "mesos.internal.ReregisterSlaveMessage" => message
                .decode::<m::ReregisterSlaveMessage>()
                .map(|msg| self.reregister_agent(from, msg)),
            "mesos.internal.UnregisterSlaveMessage" => message
                .decode::<m::UnregisterSlaveMessage>()
                .map(|msg| self.unregister_agent(&from, msg)),
            "mesos.internal.PongSlaveMessage" => {
                self.pong(&from);
                Ok(())
            }
            "mesos.internal.StatusUpdateMessage" => message
                .decode::<m::StatusUpdateMessage>()
                .map(|msg| self.agent_status_update(&from, msg)),
            "mesos.internal.ExitedExecutorMessage" => message
                .decode::<m::ExitedExecutorMessage>()
                .map(|msg| self.exited_executor(&from, msg)),
            "mesos.internal.ExecutorToFrameworkMessage" => message
                .decode::<m::ExecutorToFrameworkMessage>()
                .map(|msg| self.executor_message(&from, msg)),
            _ => {
                tracing::warn!(%from, %name, "ignoring unknown message");
                Ok(())
            }
        };
        if let Err(error) = result {
            self.metrics.dropped_messages += 1;
            tracing::warn!(%error, "dropping malformed message");
        }
    }
}

/// One RecordIO record holding `event` in the subscriber's encoding.
pub(crate) fn encode_event(event: &Event, content_type: ContentType) -> Bytes {
    Bytes::from(recordio::encode(&codec::encode(event, content_type)))
}

/// MasterInfo for this master. `ip` is the IPv4 address in network byte
/// order read as a little-endian integer, as Mesos (and libprocess) store it.
fn master_info(id: &str, upid: &Upid, hostname: &str) -> MasterInfo {
    let ip = match upid.address.ip() {
        IpAddr::V4(v4) => u32::from_le_bytes(v4.octets()),
        IpAddr::V6(_) => 0,
    };
    MasterInfo {
        id: id.to_string(),
        ip,
        port: u32::from(upid.address.port()),
        pid: Some(upid.to_string()),
        hostname: Some(hostname.to_string()),
        version: Some(MESOS_VERSION.to_string()),
        address: Some(Address {
            hostname: Some(hostname.to_string()),
            ip: Some(upid.address.ip().to_string()),
            port: i32::from(upid.address.port()),
        }),
        ..Default::default()
    }
}

/// The address of the default route, found by "connecting" a UDP socket
/// (no packet is sent); loopback if there is no route.
fn default_ip() -> IpAddr {
    UdpSocket::bind("0.0.0.0:0")
        .and_then(|socket| {
            socket.connect("192.0.2.1:9")?;
            socket.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn system_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// Wall-clock seconds since the epoch, as Mesos timestamps are.
pub(crate) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
