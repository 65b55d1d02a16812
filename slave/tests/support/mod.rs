//! Test doubles shared by the agent's integration tests: a recording
//! outbox, a fake containerizer and a harness driving the state machine.

// Test support: a failed unwrap is a failed test, with its location.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mesos_proto::codec::ContentType;
use mesos_proto::internal::{
    MasterSlaveConnection, RegisterSlaveMessage, RunTaskMessage, SlaveRegisteredMessage,
    StatusUpdateAcknowledgementMessage, StatusUpdateMessage,
};
use mesos_proto::v1::executor::{call, Call};
use mesos_proto::v1::task_status::Source;
use mesos_proto::v1::{
    value, AgentId, AgentInfo, CommandInfo, ExecutorId, FrameworkId, FrameworkInfo, Resource,
    ResourceStatistics, TaskId, TaskInfo, TaskState, TaskStatus,
};
use mesos_slave::containers::{
    BoxFuture, ContainerError, ContainerLaunch, ContainerTermination, Containers, KnownContainer,
    LaunchedContainer, RecoveredContainer,
};
use mesos_slave::executor_api::{ExecutorCallError, ExecutorStream};
use mesos_slave::files::Files;
use mesos_slave::flags::Flags;
use mesos_slave::paths::WorkDir;
use mesos_slave::slave::{Outbox, SlaveConfig, SlaveHandle, SlaveState};
use mesos_transport::{Message, Upid};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

pub mod http;
pub mod master;
pub mod process;
pub mod scheduler;
pub mod sdk;

pub const FRAMEWORK: &str = "fw-1";
pub const AGENT: &str = "agent-S0";

/// Records what the agent sends.
#[derive(Default)]
pub struct Recorder {
    pub sent: Mutex<Vec<(Upid, String, Bytes)>>,
}

impl Outbox for Recorder {
    fn send(&self, to: &Upid, name: String, body: Bytes) {
        self.sent.lock().unwrap().push((to.clone(), name, body));
    }
}

impl Recorder {
    pub fn take<M: prost::Message + Default>(&self, name: &str) -> Vec<M> {
        let mut sent = self.sent.lock().unwrap();
        let (matching, rest): (Vec<_>, Vec<_>) = sent
            .drain(..)
            .partition(|(_, n, _)| n == &format!("mesos.internal.{name}"));
        *sent = rest;
        matching
            .into_iter()
            .map(|(_, _, body)| M::decode(body).unwrap())
            .collect()
    }

    pub fn updates(&self) -> Vec<TaskStatus> {
        self.take::<StatusUpdateMessage>("StatusUpdateMessage")
            .into_iter()
            .map(|m| m.update.status)
            .collect()
    }
}

/// A containerizer whose containers end when the test says so.
#[derive(Default)]
pub struct FakeContainers {
    pub launches: Mutex<Vec<ContainerLaunch>>,
    pub exits: Mutex<HashMap<String, watch::Sender<Option<ContainerTermination>>>>,
    pub destroyed: Mutex<Vec<String>>,
    pub fail_launch: Mutex<Option<String>>,
    /// What `recover` was asked for.
    pub known: Mutex<Vec<KnownContainer>>,
    /// Containers `recover` finds still running (among the known ones).
    pub still_running: Mutex<Vec<String>>,
}

impl FakeContainers {
    pub fn exit(&self, container_id: &str, termination: ContainerTermination) {
        let exits = self.exits.lock().unwrap();
        exits[container_id].send_replace(Some(termination));
    }

    pub fn last_launch(&self) -> ContainerLaunch {
        self.launches.lock().unwrap().last().cloned().unwrap()
    }
}

impl Containers for FakeContainers {
    fn launch(
        &self,
        launch: ContainerLaunch,
    ) -> BoxFuture<Result<LaunchedContainer, ContainerError>> {
        let failure = self.fail_launch.lock().unwrap().clone();
        let id = launch.container_id.clone();
        std::fs::create_dir_all(&launch.sandbox).unwrap();
        std::fs::write(launch.sandbox.join("stdout"), b"hello from the sandbox\n").unwrap();
        self.launches.lock().unwrap().push(launch);
        if let Some(message) = failure {
            return Box::pin(async move {
                Err(ContainerError {
                    container_id: id,
                    message,
                })
            });
        }
        self.exits
            .lock()
            .unwrap()
            .insert(id, watch::channel(None).0);
        Box::pin(async {
            Ok(LaunchedContainer {
                pid: 4242,
                steps: Vec::new(),
            })
        })
    }

    fn wait(&self, container_id: &str) -> BoxFuture<Result<ContainerTermination, ContainerError>> {
        let rx = self
            .exits
            .lock()
            .unwrap()
            .get(container_id)
            .map(watch::Sender::subscribe);
        let Some(mut rx) = rx else {
            let id = container_id.to_string();
            return Box::pin(async move {
                Err(ContainerError {
                    message: format!("unknown container '{id}'"),
                    container_id: id,
                })
            });
        };
        Box::pin(async move {
            let done = rx.wait_for(Option::is_some).await.unwrap().clone().unwrap();
            Ok(done)
        })
    }

    fn destroy(&self, container_id: &str) -> BoxFuture<Result<(), ContainerError>> {
        self.destroyed
            .lock()
            .unwrap()
            .push(container_id.to_string());
        if let Some(tx) = self.exits.lock().unwrap().get(container_id) {
            // SIGKILL, as the cgroup kill would deliver.
            tx.send_if_modified(|state| {
                if state.is_some() {
                    return false;
                }
                *state = Some(ContainerTermination {
                    status: Some(9),
                    limitation: None,
                    message: "killed".into(),
                });
                true
            });
        }
        Box::pin(async { Ok(()) })
    }

    fn usage(&self, _: &str) -> BoxFuture<Result<ResourceStatistics, ContainerError>> {
        Box::pin(async { Ok(ResourceStatistics::default()) })
    }

    fn update(
        &self,
        _: &str,
        _: Vec<Resource>,
        _: BTreeMap<String, f64>,
    ) -> BoxFuture<Result<(), ContainerError>> {
        Box::pin(async { Ok(()) })
    }

    fn recover(
        &self,
        known: Vec<KnownContainer>,
    ) -> BoxFuture<Result<Vec<RecoveredContainer>, ContainerError>> {
        let running = self.still_running.lock().unwrap().clone();
        let mut recovered = Vec::new();
        for container in &known {
            if running.contains(&container.container_id) {
                self.exits
                    .lock()
                    .unwrap()
                    .insert(container.container_id.clone(), watch::channel(None).0);
                recovered.push(RecoveredContainer {
                    container_id: container.container_id.clone(),
                    pid: container.pid,
                    running: true,
                });
            }
        }
        *self.known.lock().unwrap() = known;
        Box::pin(async move { Ok(recovered) })
    }
}

pub struct Harness {
    pub slave: SlaveHandle,
    pub files: Arc<Files>,
    pub outbox: Arc<Recorder>,
    pub containers: Arc<FakeContainers>,
    pub master: Upid,
    /// Shared with the harness of a restarted agent ([`Harness::restart`]).
    pub work_dir: Arc<tempfile::TempDir>,
    extra_flags: Vec<String>,
}

pub fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Resource::default()
    }
}

pub async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

impl Harness {
    pub fn new(extra_flags: &[&str]) -> Self {
        let extra: Vec<String> = extra_flags.iter().map(|s| s.to_string()).collect();
        Self::with(Arc::new(tempfile::tempdir().unwrap()), extra)
    }

    /// A new agent on the same work directory, as after a restart (nothing
    /// is recovered until [`Harness::recover`]).
    pub fn restart(&self, extra_flags: &[&str]) -> Self {
        let mut extra = self.extra_flags.clone();
        extra.extend(extra_flags.iter().map(|s| s.to_string()));
        Self::with(self.work_dir.clone(), extra)
    }

    fn with(work_dir: Arc<tempfile::TempDir>, extra_flags: Vec<String>) -> Self {
        let mut args = vec![
            "mesos-agent".to_string(),
            "--master=127.0.0.1:5050".to_string(),
            format!("--work_dir={}", work_dir.path().display()),
            "--launcher_dir=/opt/mesos".to_string(),
        ];
        args.extend(extra_flags.iter().cloned());
        let flags = Flags::parse_from_args(args).unwrap();
        let master: Upid = "master@127.0.0.1:5050".parse().unwrap();
        let config = SlaveConfig {
            work_dir: WorkDir::new(work_dir.path()),
            launcher_dir: "/opt/mesos".into(),
            master: master.clone(),
            upid: "slave(1)@127.0.0.1:5051".parse().unwrap(),
            info: AgentInfo {
                hostname: "agent.example".into(),
                port: Some(5051),
                resources: vec![scalar("cpus", 2.0), scalar("mem", 1024.0)],
                ..AgentInfo::default()
            },
            flags,
        };
        let outbox = Arc::new(Recorder::default());
        let containers = Arc::new(FakeContainers::default());
        let files = Arc::new(Files::new());
        let slave = SlaveHandle::new(config, outbox.clone(), containers.clone(), files.clone());
        Harness {
            slave,
            files,
            outbox,
            containers,
            master,
            work_dir,
            extra_flags,
        }
    }

    /// Recovery as `agent::start` runs it: read the checkpoint (with the
    /// running boot's id `boot_id`), rebuild, recover containers (those in
    /// `still_running` are found running).
    pub async fn recover(
        &self,
        boot_id: &str,
        still_running: &[&str],
    ) -> Result<Vec<KnownContainer>, String> {
        let work_dir = WorkDir::new(self.work_dir.path());
        let strict = self.slave.lock().flags().strict;
        let state = mesos_slave::state::recover(&work_dir, strict, Some(boot_id))
            .map_err(|e| e.to_string())?;
        let known = self
            .slave
            .lock()
            .begin_recovery(state)
            .map_err(|e| e.to_string())?;
        *self.containers.still_running.lock().unwrap() =
            still_running.iter().map(|s| s.to_string()).collect();
        let recovered = self.containers.recover(known.clone()).await.unwrap();
        self.slave.lock().containers_recovered(recovered);
        settle().await;
        Ok(known)
    }

    /// Serves every agent route on a loopback port.
    pub async fn serve(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = mesos_slave::agent::routes(&self.slave, &self.files);
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        address
    }

    pub fn deliver<M: prost::Message>(&self, name: &str, message: &M) {
        self.slave.lock().handle_message(Message {
            from: self.master.clone(),
            name: format!("mesos.internal.{name}"),
            body: Bytes::from(message.encode_to_vec()),
        });
    }

    pub fn register(&self) {
        let now = Instant::now();
        self.slave.lock().start_registration(now);
        self.slave.lock().tick(now + Duration::from_secs(2));
        assert_eq!(
            self.outbox
                .take::<RegisterSlaveMessage>("RegisterSlaveMessage")
                .len(),
            1
        );
        self.deliver(
            "SlaveRegisteredMessage",
            &SlaveRegisteredMessage {
                slave_id: AgentId {
                    value: AGENT.into(),
                },
                connection: Some(MasterSlaveConnection {
                    total_ping_timeout_seconds: Some(10.0),
                }),
            },
        );
        assert_eq!(self.slave.lock().state(), SlaveState::Running);
    }

    /// The test framework's info.
    pub fn framework(checkpoint: bool) -> FrameworkInfo {
        FrameworkInfo {
            user: "root".into(),
            name: "test".into(),
            id: Some(FrameworkId {
                value: FRAMEWORK.into(),
            }),
            checkpoint: Some(checkpoint),
            ..FrameworkInfo::default()
        }
    }

    pub fn run_command_task(&self, task_id: &str, command: &str) {
        self.run_command_task_for(Self::framework(true), task_id, command);
    }

    pub fn run_command_task_for(&self, framework: FrameworkInfo, task_id: &str, command: &str) {
        let task = TaskInfo {
            name: task_id.into(),
            task_id: TaskId {
                value: task_id.into(),
            },
            agent_id: AgentId {
                value: AGENT.into(),
            },
            resources: vec![scalar("cpus", 0.5), scalar("mem", 64.0)],
            command: Some(CommandInfo {
                value: Some(command.into()),
                ..CommandInfo::default()
            }),
            ..TaskInfo::default()
        };
        self.deliver(
            "RunTaskMessage",
            &RunTaskMessage {
                framework,
                task,
                launch_executor: Some(true),
                ..RunTaskMessage::default()
            },
        );
    }

    pub fn call(executor: &str, kind: call::Type) -> Call {
        Call {
            executor_id: ExecutorId {
                value: executor.into(),
            },
            framework_id: FrameworkId {
                value: FRAMEWORK.into(),
            },
            r#type: Some(kind as i32),
            ..Call::default()
        }
    }

    pub fn subscribe(&self, executor: &str) -> mpsc::UnboundedReceiver<Bytes> {
        self.try_subscribe(executor, call::Subscribe::default())
            .unwrap()
    }

    /// SUBSCRIBE with what the executor has not seen acknowledged.
    pub fn try_subscribe(
        &self,
        executor: &str,
        unacknowledged: call::Subscribe,
    ) -> Result<mpsc::UnboundedReceiver<Bytes>, ExecutorCallError> {
        let mut subscribe = Self::call(executor, call::Type::Subscribe);
        subscribe.subscribe = Some(unacknowledged);
        let (stream, rx) = ExecutorStream::new(ContentType::Json);
        self.slave.lock().subscribe(&subscribe, stream)?;
        Ok(rx)
    }

    /// An executor's status as it would put it in an UPDATE call.
    pub fn executor_status(task: &str, state: TaskState, uuid: u8) -> TaskStatus {
        TaskStatus {
            task_id: TaskId { value: task.into() },
            state: state as i32,
            uuid: Some(vec![uuid; 16]),
            source: Some(Source::Executor as i32),
            ..TaskStatus::default()
        }
    }

    pub fn update(
        &self,
        executor: &str,
        task: &str,
        state: TaskState,
        uuid: u8,
    ) -> Result<(), ExecutorCallError> {
        let mut update = Self::call(executor, call::Type::Update);
        update.update = Some(call::Update {
            status: Self::executor_status(task, state, uuid),
        });
        self.slave.lock().executor_update(&update)
    }

    pub fn ack(&self, task: &str, uuid: Vec<u8>) {
        self.deliver(
            "StatusUpdateAcknowledgementMessage",
            &StatusUpdateAcknowledgementMessage {
                slave_id: AgentId {
                    value: AGENT.into(),
                },
                framework_id: FrameworkId {
                    value: FRAMEWORK.into(),
                },
                task_id: TaskId { value: task.into() },
                uuid,
            },
        );
    }
}

/// Decodes every queued event of an executor stream as JSON.
pub fn events(rx: &mut mpsc::UnboundedReceiver<Bytes>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(record) = rx.try_recv() {
        let text = std::str::from_utf8(&record).unwrap();
        let (length, json) = text.split_once('\n').unwrap();
        assert_eq!(
            length.parse::<usize>().unwrap(),
            json.len(),
            "RecordIO length"
        );
        out.push(serde_json::from_str(json).unwrap());
    }
    out
}

pub fn state_of(status: &TaskStatus) -> TaskState {
    TaskState::try_from(status.state).unwrap()
}
