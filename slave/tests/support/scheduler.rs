//! A minimal v1 HTTP scheduler for end-to-end tests: SUBSCRIBE over a raw
//! socket (like pymesos), ACCEPT offers with command tasks, KILL, and
//! ACKNOWLEDGE every update that carries a uuid.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use super::http::{request, EventStream};

/// A subscribed framework.
pub struct TestScheduler {
    master: SocketAddr,
    stream: EventStream,
    stream_id: String,
    pub framework_id: String,
    /// Events received but not yet consumed, in order.
    backlog: std::collections::VecDeque<Value>,
}

impl TestScheduler {
    /// Subscribes a framework named `name` (user root, checkpointing).
    pub async fn subscribe(master: SocketAddr, name: &str) -> Result<Self, String> {
        let body = json!({
            "type": "SUBSCRIBE",
            "subscribe": {"framework_info": {
                "user": "root", "name": name, "checkpoint": true, "failover_timeout": 0.0
            }}
        });
        let mut stream = EventStream::open(
            master,
            "/api/v1/scheduler",
            &[
                ("Content-Type", "application/json"),
                ("Accept", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
        .await;
        if stream.status != 200 {
            return Err(format!("SUBSCRIBE answered {}", stream.status));
        }
        let stream_id = stream
            .header("mesos-stream-id")
            .unwrap_or_default()
            .to_string();
        let subscribed = stream
            .next(Duration::from_secs(10))
            .await
            .ok_or("no SUBSCRIBED")?;
        let framework_id = subscribed["subscribed"]["framework_id"]["value"]
            .as_str()
            .ok_or_else(|| format!("bad SUBSCRIBED: {subscribed}"))?
            .to_string();
        Ok(TestScheduler {
            master,
            stream,
            stream_id,
            framework_id,
            backlog: Default::default(),
        })
    }

    async fn call(&self, mut body: Value) -> Result<(), String> {
        body["framework_id"] = json!({"value": self.framework_id});
        let response = request(
            self.master,
            "POST",
            "/api/v1/scheduler",
            &[
                ("Content-Type", "application/json"),
                ("Mesos-Stream-Id", &self.stream_id),
            ],
            body.to_string().as_bytes(),
        )
        .await;
        if response.status == 202 {
            Ok(())
        } else {
            Err(format!(
                "{} answered {}: {}",
                body["type"],
                response.status,
                response.text()
            ))
        }
    }

    /// The next event of `kind` (others are kept for later), acknowledging
    /// updates as they pass.
    pub async fn next(&mut self, kind: &str, timeout: Duration) -> Result<Value, String> {
        if let Some(index) = self.backlog.iter().position(|e| e["type"] == kind) {
            return Ok(self.backlog.remove(index).expect("index from position"));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self
                .stream
                .next(left)
                .await
                .ok_or_else(|| format!("no {kind} within {timeout:?}"))?;
            if event["type"] == "UPDATE" {
                self.acknowledge(&event["update"]["status"]).await?;
            }
            if event["type"] == kind {
                return Ok(event);
            }
            if event["type"] != "HEARTBEAT" {
                self.backlog.push_back(event);
            }
        }
    }

    async fn acknowledge(&self, status: &Value) -> Result<(), String> {
        let Some(uuid) = status["uuid"].as_str() else {
            return Ok(());
        };
        self.call(json!({
            "type": "ACKNOWLEDGE",
            "acknowledge": {"agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": uuid}
        }))
        .await
    }

    /// Accepts `offer` launching `tasks` (JSON TaskInfos without agent_id).
    pub async fn launch(&self, offer: &Value, tasks: Vec<Value>) -> Result<(), String> {
        let tasks: Vec<Value> = tasks
            .into_iter()
            .map(|mut t| {
                t["agent_id"] = offer["agent_id"].clone();
                t
            })
            .collect();
        self.call(json!({
            "type": "ACCEPT",
            "accept": {
                "offer_ids": [offer["id"]],
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
                "filters": {"refuse_seconds": 1.0}
            }
        }))
        .await
    }

    /// Asks the master to kill a task.
    pub async fn kill(&self, task: &str) -> Result<(), String> {
        self.call(json!({"type": "KILL", "kill": {"task_id": {"value": task}}}))
            .await
    }

    /// Tears the framework down.
    pub async fn teardown(&self) -> Result<(), String> {
        self.call(json!({"type": "TEARDOWN"})).await
    }
}

/// A command TaskInfo with `cpus`/`mem` in the pre-refinement format
/// non-MULTI_ROLE frameworks use.
pub fn command_task(id: &str, command: &str, cpus: f64, mem: f64) -> Value {
    json!({
        "name": id,
        "task_id": {"value": id},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}, "role": "*"},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}, "role": "*"}
        ],
        "command": {"value": command, "shell": true}
    })
}
