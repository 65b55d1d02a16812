//! A scripted master speaking the real libprocess-style transport, for
//! driving a real `mesos-agent` process: it registers the agent, sends
//! RunTask/KillTask, and receives (and acknowledges) status updates.

use std::net::SocketAddr;
use std::time::Duration;

use mesos_proto::internal::{
    KillTaskMessage, MasterSlaveConnection, RunTaskMessage, ShutdownFrameworkMessage,
    SlaveRegisteredMessage, StatusUpdateAcknowledgementMessage, StatusUpdateMessage,
};
use mesos_proto::v1::{AgentId, FrameworkId, FrameworkInfo, TaskId, TaskInfo, TaskStatus};
use mesos_transport::{Message, Sender, Upid};
use tokio::sync::mpsc;

/// The scripted master.
pub struct FakeMaster {
    pub upid: Upid,
    pub agent: Option<Upid>,
    pub agent_id: AgentId,
    sender: Sender,
    inbox: mpsc::UnboundedReceiver<Message>,
    _server: tokio::task::JoinHandle<()>,
}

impl FakeMaster {
    /// Listens on a loopback port as `master@127.0.0.1:<port>`.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let upid = Upid::new("master", address);
        let (tx, inbox) = mpsc::unbounded_channel();
        let router = mesos_transport::routes("master", move |m| drop(tx.send(m)));
        let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        FakeMaster {
            sender: Sender::new(upid.clone()),
            upid,
            agent: None,
            agent_id: AgentId {
                value: "fake-master-S0".into(),
            },
            inbox,
            _server: server,
        }
    }

    /// The next message named `name` (others are dropped), within `timeout`.
    pub async fn expect(&mut self, name: &str, timeout: Duration) -> Result<Message, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.inbox.recv())
                .await
                .map_err(|_| format!("no {name} within {timeout:?}"))?
                .ok_or("master inbox closed")?;
            if message.name == format!("mesos.internal.{name}") {
                return Ok(message);
            }
        }
    }

    /// Waits for the agent's registration and accepts it.
    pub async fn accept_registration(&mut self) -> Result<(), String> {
        let message = self
            .expect("RegisterSlaveMessage", Duration::from_secs(30))
            .await?;
        self.agent = Some(message.from.clone());
        self.sender.send(
            &message.from,
            &SlaveRegisteredMessage {
                slave_id: self.agent_id.clone(),
                connection: Some(MasterSlaveConnection {
                    total_ping_timeout_seconds: Some(600.0),
                }),
            },
        );
        Ok(())
    }

    /// Sends a task to the agent.
    pub fn run_task(&self, framework: &FrameworkInfo, mut task: TaskInfo) {
        task.agent_id = self.agent_id.clone();
        let message = RunTaskMessage {
            framework: framework.clone(),
            task,
            launch_executor: Some(true),
            ..RunTaskMessage::default()
        };
        self.sender
            .send(self.agent.as_ref().expect("registered"), &message);
    }

    /// Asks the agent to kill a task.
    pub fn kill_task(&self, framework: &FrameworkId, task: &str) {
        let message = KillTaskMessage {
            framework_id: framework.clone(),
            task_id: TaskId { value: task.into() },
            kill_policy: None,
        };
        self.sender
            .send(self.agent.as_ref().expect("registered"), &message);
    }

    /// Tells the agent to shut down every executor of a framework.
    pub fn shutdown_framework(&self, framework: &FrameworkId) {
        let message = ShutdownFrameworkMessage {
            framework_id: framework.clone(),
        };
        self.sender
            .send(self.agent.as_ref().expect("registered"), &message);
    }

    /// The next status update, acknowledged like a scheduler would.
    pub async fn next_update(&mut self, timeout: Duration) -> TaskStatus {
        let message = self
            .expect("StatusUpdateMessage", timeout)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let update = message.decode::<StatusUpdateMessage>().unwrap().update;
        if let Some(uuid) = update.status.uuid.clone() {
            let ack = StatusUpdateAcknowledgementMessage {
                slave_id: self.agent_id.clone(),
                framework_id: update.framework_id.clone(),
                task_id: update.status.task_id.clone(),
                uuid,
            };
            self.sender.send(&message.from, &ack);
        }
        update.status
    }
}
