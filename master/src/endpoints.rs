//! Operator and utility endpoints: `/version`, `/health`, `/state`
//! (`/master/state`, Mesos's v0 JSON model from src/common/http.cpp and
//! src/master/http.cpp), `/flags`, `/metrics/snapshot` and
//! `/master/redirect`.

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mesos_proto::codec;
use mesos_proto::resources::Resources;
use mesos_proto::v1::{self, Task, TaskState};
use prost_reflect::ReflectMessage;
use serde_json::{json, Map, Value};

use crate::agents::Agent;
use crate::frameworks::Framework;
use crate::http::{AppState, HttpError};
use crate::master::{inspect, now_secs, Master, MESOS_VERSION};

/// `GET /version`. pymesos parses `version` as dotted integers.
pub(crate) async fn version() -> Json<Value> {
    Json(version_json())
}

fn version_json() -> Value {
    json!({
        "version": MESOS_VERSION,
        "build_date": "",
        "build_time": 0.0,
        "build_user": "",
        "git_sha": "",
        "git_branch": "",
        "git_tag": MESOS_VERSION,
    })
}

/// `GET /health`: 200, empty body.
/// `GET /timeline`: each task's seed-step marks recorded in this process
/// (see `mesos-timeline`); `mesos-local` merges it with the agents'.
pub(crate) async fn timeline() -> Json<Value> {
    Json(mesos_timeline::Timeline::global().to_json())
}

pub(crate) async fn health() -> StatusCode {
    StatusCode::OK
}

/// `GET /state`, `/master/state`.
pub(crate) async fn state(State(app): State<AppState>) -> Result<Json<Value>, HttpError> {
    inspect(&app.commands, |m| state_json(m))
        .await
        .map(Json)
        .ok_or_else(HttpError::unavailable)
}

/// `GET /flags`.
pub(crate) async fn flags(State(app): State<AppState>) -> Result<Json<Value>, HttpError> {
    inspect(&app.commands, |m| json!({ "flags": m.flags.to_map() }))
        .await
        .map(Json)
        .ok_or_else(HttpError::unavailable)
}

/// `GET /metrics/snapshot`.
pub(crate) async fn metrics(State(app): State<AppState>) -> Result<Json<Value>, HttpError> {
    inspect(&app.commands, |m| metrics_json(m))
        .await
        .map(Json)
        .ok_or_else(HttpError::unavailable)
}

/// `/master/redirect`: 307 to the leader, which is always this master
/// (there is no HA mode yet), as `//host:port[/rest]`.
pub(crate) async fn redirect(State(app): State<AppState>, uri: Uri) -> Response {
    let hostname = inspect(&app.commands, |m| m.info.hostname.clone())
        .await
        .flatten()
        .unwrap_or_else(|| app.upid.address.ip().to_string());
    let rest = uri
        .path()
        .strip_prefix("/master/redirect")
        .unwrap_or_default();
    let location = format!("//{hostname}:{}{rest}", app.upid.address.port());
    (StatusCode::TEMPORARY_REDIRECT, [(LOCATION, location)]).into_response()
}

/// The `/state` document.
pub fn state_json(master: &Master) -> Value {
    let mut state = Map::new();
    if let Value::Object(version) = version_json() {
        state.extend(version);
    }
    let activated = master.agents.values().filter(|a| a.connected).count();
    state.insert("start_time".into(), json!(master.start_time));
    state.insert("elected_time".into(), json!(master.start_time));
    state.insert("id".into(), json!(master.info.id));
    state.insert("pid".into(), json!(master.upid.to_string()));
    state.insert("hostname".into(), json!(master.info.hostname));
    state.insert("activated_slaves".into(), json!(activated));
    state.insert(
        "deactivated_slaves".into(),
        json!(master.agents.len() - activated),
    );
    state.insert(
        "unreachable_slaves".into(),
        json!(master.unreachable_agents.len()),
    );
    if let Some(cluster) = &master.flags.cluster {
        state.insert("cluster".into(), json!(cluster));
    }
    state.insert("leader".into(), json!(master.upid.to_string()));
    state.insert("leader_info".into(), proto_json(&master.info));
    state.insert("flags".into(), json!(master.flags.to_map()));
    state.insert(
        "slaves".into(),
        Value::Array(
            master
                .agents
                .values()
                .map(|a| agent_json(master, a))
                .collect(),
        ),
    );
    state.insert(
        "frameworks".into(),
        Value::Array(
            master
                .frameworks
                .values()
                .map(|f| framework_json(master, f))
                .collect(),
        ),
    );
    state.insert(
        "completed_frameworks".into(),
        Value::Array(
            master
                .completed_frameworks
                .iter()
                .map(|f| framework_json(master, f))
                .collect(),
        ),
    );
    // Agents the registry lists that have not re-registered yet.
    state.insert(
        "recovered_slaves".into(),
        Value::Array(
            master
                .recovered_agents
                .values()
                .map(agent_info_json)
                .collect(),
        ),
    );
    // Mesos 1.11 keeps tasks of unknown frameworks under recovered
    // frameworks; the key stays for old clients.
    state.insert("orphan_tasks".into(), json!([]));
    state.insert("unregistered_frameworks".into(), json!([]));
    Value::Object(state)
}

fn agent_json(master: &Master, agent: &Agent) -> Value {
    let mut used = Resources::new();
    for (framework_id, task_id) in &agent.tasks {
        if let Some(task) = master
            .frameworks
            .get(framework_id)
            .and_then(|f| f.tasks.get(task_id))
        {
            used.add(&Resources::from(task.resources.clone()));
        }
    }
    for executor in agent.executors.values().flat_map(|e| e.values()) {
        used.add(&Resources::from(executor.resources.clone()));
    }
    used.unallocate();
    let mut offered = Resources::new();
    for offer_id in &agent.offers {
        if let Some(entry) = master.offers.get(offer_id) {
            offered.add(&entry.resources);
        }
    }
    offered.unallocate();
    let capabilities: Vec<&str> = agent
        .capabilities
        .iter()
        .filter_map(|c| c.r#type)
        .filter_map(|t| v1::agent_info::capability::Type::try_from(t).ok())
        .map(|t| t.as_str_name())
        .collect();
    json!({
        "id": agent.id,
        "pid": agent.pid.to_string(),
        "hostname": agent.info.hostname,
        "port": agent.info.port(),
        "registered_time": agent.registered_time,
        "reregistered_time": agent.reregistered_time,
        "resources": resources_json(&agent.total),
        "used_resources": resources_json(&used),
        "offered_resources": resources_json(&offered),
        "reserved_resources": {},
        "unreserved_resources": resources_json(&agent.total.unreserved()),
        "attributes": attributes_json(&agent.info.attributes),
        "active": agent.connected,
        "deactivated": !agent.connected,
        "version": agent.version.clone().unwrap_or_default(),
        "capabilities": capabilities,
        "reserved_resources_full": {},
        "unreserved_resources_full": protos_json(&agent.total.unreserved().to_vec()),
        "used_resources_full": protos_json(&used.to_vec()),
        "offered_resources_full": protos_json(&offered.to_vec()),
    })
}

#[allow(deprecated)]
fn framework_json(master: &Master, framework: &Framework) -> Value {
    let mut used = Resources::new();
    for task in framework.tasks.values() {
        used.add(&Resources::from(task.resources.clone()));
    }
    used.unallocate();
    let mut offered = Resources::new();
    let mut offers = Vec::new();
    for offer_id in &framework.offers {
        if let Some(entry) = master.offers.get(offer_id) {
            offered.add(&entry.resources);
            offers.push(offer_json(&entry.offer, &entry.resources));
        }
    }
    offered.unallocate();
    let info = &framework.info;
    let capabilities: Vec<&str> = info
        .capabilities
        .iter()
        .filter_map(|c| c.r#type)
        .filter_map(|t| v1::framework_info::capability::Type::try_from(t).ok())
        .map(|t| t.as_str_name())
        .collect();
    let roles: Vec<String> = framework.roles().into_iter().collect();
    let mut object = json!({
        "id": framework.id,
        "name": info.name,
        "user": info.user,
        "hostname": info.hostname.clone().unwrap_or_default(),
        "webui_url": info.webui_url.clone().unwrap_or_default(),
        "principal": info.principal,
        "failover_timeout": info.failover_timeout.unwrap_or(0.0),
        "checkpoint": info.checkpoint.unwrap_or(false),
        "capabilities": capabilities,
        "active": framework.connected(),
        "connected": framework.connected(),
        "recovered": framework.recovered,
        "registered_time": framework.registered_time,
        "unregistered_time": framework.unregistered_time.unwrap_or(0.0),
        "resources": resources_json(&(&used + &offered)),
        "allocated_resources": resources_json(&(&used + &offered)),
        "used_resources": resources_json(&used),
        "offered_resources": resources_json(&offered),
        "tasks": framework.tasks.values().map(task_json).collect::<Vec<_>>(),
        "unreachable_tasks": framework.unreachable_tasks.values().map(task_json).collect::<Vec<_>>(),
        "completed_tasks": framework.completed_tasks.iter().map(task_json).collect::<Vec<_>>(),
        "offers": offers,
        "executors": executors_json(master, &framework.id),
        "suppressed_roles": framework.suppressed_roles.iter().collect::<Vec<_>>(),
    });
    if let Value::Object(map) = &mut object {
        if let Some(time) = framework.reregistered_time {
            map.insert("reregistered_time".into(), json!(time));
        }
        if framework.has_capability(v1::framework_info::capability::Type::MultiRole) {
            map.insert("roles".into(), json!(roles));
        } else {
            map.insert(
                "role".into(),
                json!(info.role.clone().unwrap_or_else(|| "*".into())),
            );
        }
    }
    object
}

/// Mesos's `json(SlaveInfo)` model, used for `recovered_slaves`.
fn agent_info_json(info: &v1::AgentInfo) -> Value {
    json!({
        "id": info.id.as_ref().map(|i| i.value.clone()).unwrap_or_default(),
        "hostname": info.hostname,
        "port": info.port(),
        "resources": resources_json(&Resources::from(info.resources.clone())),
        "attributes": attributes_json(&info.attributes),
    })
}

/// The framework's executors on registered agents, in Mesos's model
/// (`json(ExecutorInfo)` plus `slave_id`).
fn executors_json(master: &Master, framework_id: &str) -> Vec<Value> {
    master
        .agents
        .values()
        .flat_map(|agent| {
            agent
                .executors
                .get(framework_id)
                .into_iter()
                .flat_map(|executors| executors.values())
                .map(move |executor| executor_json(&agent.id, executor))
        })
        .collect()
}

fn executor_json(agent_id: &str, executor: &v1::ExecutorInfo) -> Value {
    let mut object = json!({
        "executor_id": executor.executor_id.value,
        "name": executor.name.clone().unwrap_or_default(),
        "framework_id": executor.framework_id.as_ref().map(|f| f.value.clone()).unwrap_or_default(),
        "command": command_json(executor.command.as_ref()),
        "resources": resources_json(&Resources::from(executor.resources.clone())),
        "slave_id": agent_id,
    });
    if let Value::Object(map) = &mut object {
        // Executors cannot mix roles (MESOS-6636): the first one's role.
        let role = executor
            .resources
            .first()
            .and_then(|r| r.allocation_info.as_ref()?.role.clone());
        if let Some(role) = role {
            map.insert("role".into(), json!(role));
        }
        if let Some(labels) = &executor.labels {
            map.insert("labels".into(), proto_json(labels)["labels"].clone());
        }
        let kind = executor
            .r#type
            .and_then(|t| v1::executor_info::Type::try_from(t).ok());
        if let Some(kind) = kind {
            map.insert("type".into(), json!(kind.as_str_name()));
        }
    }
    object
}

/// Mesos's `json(CommandInfo)`: shell and value when set, argv, environment
/// when set, uris as {value, executable}.
fn command_json(command: Option<&v1::CommandInfo>) -> Value {
    let Some(command) = command else {
        return json!({"argv": [], "uris": []});
    };
    let mut object = Map::new();
    if let Some(shell) = command.shell {
        object.insert("shell".into(), json!(shell));
    }
    if let Some(value) = &command.value {
        object.insert("value".into(), json!(value));
    }
    object.insert("argv".into(), json!(command.arguments));
    if let Some(environment) = &command.environment {
        object.insert("environment".into(), proto_json(environment));
    }
    let uris: Vec<Value> = command
        .uris
        .iter()
        .map(|u| json!({"value": u.value, "executable": u.executable.unwrap_or(false)}))
        .collect();
    object.insert("uris".into(), Value::Array(uris));
    Value::Object(object)
}

fn offer_json(offer: &v1::Offer, resources: &Resources) -> Value {
    json!({
        "id": offer.id.value,
        "framework_id": offer.framework_id.value,
        "slave_id": offer.agent_id.value,
        "resources": resources_json(resources),
    })
}

/// A task in Mesos's v0 model.
fn task_json(task: &Task) -> Value {
    let role = task
        .resources
        .iter()
        .find_map(|r| r.allocation_info.as_ref()?.role.clone());
    let statuses: Vec<Value> = task
        .statuses
        .iter()
        .map(|s| {
            json!({
                "state": state_name(s.state),
                "timestamp": s.timestamp.unwrap_or(0.0),
            })
        })
        .collect();
    let mut object = json!({
        "id": task.task_id.value,
        "name": task.name,
        "framework_id": task.framework_id.value,
        "executor_id": task.executor_id.as_ref().map(|e| e.value.clone()).unwrap_or_default(),
        "slave_id": task.agent_id.value,
        "state": state_name(task.state),
        "resources": resources_json(&Resources::from(task.resources.clone())),
        "statuses": statuses,
    });
    if let Value::Object(map) = &mut object {
        if let Some(role) = role {
            map.insert("role".into(), json!(role));
        }
        if let Some(user) = &task.user {
            map.insert("user".into(), json!(user));
        }
        if let Some(labels) = &task.labels {
            map.insert("labels".into(), proto_json(labels)["labels"].clone());
        }
        if let Some(container) = &task.container {
            map.insert("container".into(), proto_json(container));
        }
    }
    object
}

fn state_name(state: i32) -> &'static str {
    TaskState::try_from(state).map_or("TASK_UNKNOWN", |s| s.as_str_name())
}

/// Mesos's `model(Resources)`: cpus/gpus/mem/disk always present; scalars as
/// numbers, ranges as `"[a-b, c-d]"`, sets as `"{a, b}"`; revocable excluded.
pub fn resources_json(resources: &Resources) -> Value {
    let mut object = Map::new();
    for name in ["cpus", "gpus", "mem", "disk"] {
        object.insert(name.into(), json!(0.0));
    }
    let non_revocable = resources.filter(|r| r.revocable.is_none());
    for (name, value) in non_revocable.scalar_quantities() {
        object.insert(name, json!(value));
    }
    for resource in non_revocable.iter() {
        if let Some(ranges) = &resource.ranges {
            let all = non_revocable
                .ranges(&resource.name)
                .unwrap_or_else(|| ranges.clone());
            let text: Vec<String> = all
                .range
                .iter()
                .map(|r| format!("{}-{}", r.begin, r.end))
                .collect();
            object.insert(
                resource.name.clone(),
                json!(format!("[{}]", text.join(", "))),
            );
        } else if let Some(set) = &resource.set {
            object.insert(
                resource.name.clone(),
                json!(format!("{{{}}}", set.item.join(", "))),
            );
        }
    }
    Value::Object(object)
}

fn attributes_json(attributes: &[v1::Attribute]) -> Value {
    let mut object = Map::new();
    for attribute in attributes {
        let value = if let Some(scalar) = &attribute.scalar {
            json!(scalar.value)
        } else if let Some(text) = &attribute.text {
            json!(text.value)
        } else if let Some(ranges) = &attribute.ranges {
            let text: Vec<String> = ranges
                .range
                .iter()
                .map(|r| format!("{}-{}", r.begin, r.end))
                .collect();
            json!(format!("[{}]", text.join(", ")))
        } else if let Some(set) = &attribute.set {
            json!(format!("{{{}}}", set.item.join(", ")))
        } else {
            Value::Null
        };
        object.insert(attribute.name.clone(), value);
    }
    Value::Object(object)
}

fn proto_json<M: ReflectMessage>(message: &M) -> Value {
    serde_json::from_str(&codec::to_json(message)).unwrap_or(Value::Null)
}

fn protos_json<M: ReflectMessage>(messages: &[M]) -> Value {
    Value::Array(messages.iter().map(proto_json).collect())
}

/// The `/metrics/snapshot` document.
pub fn metrics_json(master: &Master) -> Value {
    let mut metrics = Map::new();
    let mut put = |name: &str, value: f64| {
        metrics.insert(name.to_string(), json!(value));
    };
    put("master/elected", 1.0);
    put("master/uptime_secs", now_secs() - master.start_time);
    let connected_agents = master.agents.values().filter(|a| a.connected).count() as f64;
    put("master/slaves_active", connected_agents);
    put("master/slaves_connected", connected_agents);
    put(
        "master/slaves_disconnected",
        master.agents.len() as f64 - connected_agents,
    );
    put(
        "master/slaves_inactive",
        master.agents.len() as f64 - connected_agents,
    );
    put(
        "master/slaves_unreachable",
        master.unreachable_agents.len() as f64,
    );
    let connected = master.frameworks.values().filter(|f| f.connected()).count() as f64;
    put("master/frameworks_active", connected);
    put("master/frameworks_connected", connected);
    put(
        "master/frameworks_disconnected",
        master.frameworks.len() as f64 - connected,
    );
    put(
        "master/frameworks_inactive",
        master.frameworks.len() as f64 - connected,
    );
    put("master/outstanding_offers", master.offers.len() as f64);

    let mut live = std::collections::BTreeMap::<&str, f64>::new();
    for task in master.frameworks.values().flat_map(|f| f.tasks.values()) {
        let name = match TaskState::try_from(task.state) {
            Ok(TaskState::TaskStaging) => "staging",
            Ok(TaskState::TaskStarting) => "starting",
            Ok(TaskState::TaskRunning) => "running",
            Ok(TaskState::TaskKilling) => "killing",
            _ => continue,
        };
        *live.entry(name).or_default() += 1.0;
    }
    let unreachable: usize = master
        .frameworks
        .values()
        .map(|f| f.unreachable_tasks.len())
        .sum();
    for name in ["staging", "starting", "running", "killing"] {
        put(
            &format!("master/tasks_{name}"),
            live.get(name).copied().unwrap_or(0.0),
        );
    }
    put("master/tasks_unreachable", unreachable as f64);
    for name in [
        "finished",
        "failed",
        "killed",
        "lost",
        "error",
        "dropped",
        "gone",
        "gone_by_operator",
    ] {
        let count = master
            .metrics
            .terminal_tasks
            .get(name)
            .copied()
            .unwrap_or(0);
        put(&format!("master/tasks_{name}"), count as f64);
    }

    let total = master.allocator.total().clone();
    let mut used = Resources::new();
    for task in master.frameworks.values().flat_map(|f| f.tasks.values()) {
        used.add(&Resources::from(task.resources.clone()));
    }
    used.unallocate();
    for name in ["cpus", "mem", "disk", "gpus"] {
        let t = total.scalar(name).unwrap_or(0.0);
        let u = used.scalar(name).unwrap_or(0.0);
        put(&format!("master/{name}_total"), t);
        put(&format!("master/{name}_used"), u);
        put(
            &format!("master/{name}_percent"),
            if t > 0.0 { u / t } else { 0.0 },
        );
        put(
            &format!("master/{name}_revocable_total"),
            total.revocable().scalar(name).unwrap_or(0.0),
        );
    }

    let m = &master.metrics;
    put("master/valid_status_updates", m.valid_status_updates as f64);
    put(
        "master/invalid_status_updates",
        m.invalid_status_updates as f64,
    );
    put(
        "master/messages_status_update",
        (m.valid_status_updates + m.invalid_status_updates) as f64,
    );
    put(
        "master/messages_status_update_acknowledgement",
        m.acknowledgements as f64,
    );
    put("master/messages_launch_tasks", m.tasks_launched as f64);
    put("master/slave_removals", m.agent_removals as f64);
    put("master/invalid_framework_to_executor_messages", 0.0);
    put("master/dropped_messages", m.dropped_messages as f64);
    put("master/offers_rescinded", m.offers_rescinded as f64);
    for (name, count) in &m.calls {
        put(
            &format!("master/messages_{}", name.to_lowercase()),
            *count as f64,
        );
    }
    for (name, count) in &m.events {
        put(
            &format!("master/events_{}", name.to_lowercase()),
            *count as f64,
        );
    }
    put("allocator/mesos/allocation_runs", m.allocation_runs as f64);
    for (name, value) in m
        .allocation_run
        .snapshot("allocator/mesos/allocation_run_ms")
    {
        put(&name, value);
    }
    put("master/slave_registrations", m.agent_registrations as f64);
    put(
        "master/slave_reregistrations",
        m.agent_reregistrations as f64,
    );
    put(
        "master/recovery_slave_removals",
        m.recovery_agent_removals as f64,
    );
    for (name, value) in m.registry_store.snapshot("registrar/state_store_ms") {
        put(&name, value);
    }
    put(
        "allocator/mesos/offer_filters/active",
        master.allocator.filter_count() as f64,
    );
    Value::Object(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_use_mesos_v0_model() {
        let r = Resources::parse(
            "cpus:2;mem:1024;ports:[31000-32000, 33000-33001];zones:{a,b}",
            "*",
        )
        .unwrap();
        let json = resources_json(&r);
        assert_eq!(json["cpus"], json!(2.0));
        assert_eq!(json["gpus"], json!(0.0));
        assert_eq!(json["disk"], json!(0.0));
        assert_eq!(json["ports"], json!("[31000-32000, 33000-33001]"));
        assert_eq!(json["zones"], json!("{a, b}"));
    }
}
