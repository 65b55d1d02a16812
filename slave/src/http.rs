//! The agent's operator endpoints, with Mesos's JSON shapes
//! (src/slave/http.cpp, src/common/http.cpp `json(...)` writers):
//! `/state` (= `/slave(1)/state`), `/flags`, `/health`, `/version`,
//! `/metrics/snapshot` and `/monitor/statistics`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use mesos_proto::codec;
use mesos_proto::v1::{value, Attribute, Resource, Task, TaskState, TaskStatus};
use serde_json::{json, Map, Value};

use crate::registration::{capabilities, MESOS_VERSION};
use crate::slave::{Executor, Framework, Slave, SlaveHandle, SlaveState};

/// `model(Resources)`: scalars summed per name (`cpus`, `gpus`, `mem`,
/// `disk` always present), ranges as `[a-b, c-d]`, sets as `{a,b}`.
pub fn resources_json(resources: &[Resource]) -> Map<String, Value> {
    let mut scalars: BTreeMap<String, f64> = ["cpus", "gpus", "mem", "disk"]
        .into_iter()
        .map(|name| (name.to_string(), 0.0))
        .collect();
    let mut ranges: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    let mut sets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for resource in resources {
        if let Some(scalar) = &resource.scalar {
            *scalars.entry(resource.name.clone()).or_default() += scalar.value;
        } else if let Some(r) = &resource.ranges {
            ranges
                .entry(resource.name.clone())
                .or_default()
                .extend(r.range.iter().map(|r| (r.begin, r.end)));
        } else if let Some(set) = &resource.set {
            sets.entry(resource.name.clone())
                .or_default()
                .extend(set.item.iter().cloned());
        }
    }
    let mut out = Map::new();
    for (name, amount) in scalars {
        // Mesos scalars have three decimals; hide float noise like 0.30000000000000004.
        out.insert(name, json!((amount * 1000.0).round() / 1000.0));
    }
    for (name, mut list) in ranges {
        list.sort_unstable();
        out.insert(name, Value::String(ranges_text(&list)));
    }
    for (name, items) in sets {
        out.insert(name, Value::String(format!("{{{}}}", items.join(","))));
    }
    out
}

fn ranges_text(ranges: &[(u64, u64)]) -> String {
    let parts: Vec<String> = ranges.iter().map(|(b, e)| format!("{b}-{e}")).collect();
    format!("[{}]", parts.join(", "))
}

/// `model(Attributes)`: name → number or text.
pub fn attributes_json(attributes: &[Attribute]) -> Map<String, Value> {
    attributes
        .iter()
        .map(|attribute| {
            let value = if let Some(scalar) = &attribute.scalar {
                json!(scalar.value)
            } else if let Some(ranges) = &attribute.ranges {
                let list: Vec<(u64, u64)> = ranges.range.iter().map(|r| (r.begin, r.end)).collect();
                Value::String(ranges_text(&list))
            } else if let Some(set) = &attribute.set {
                Value::String(format!("{{{}}}", set.item.join(",")))
            } else {
                Value::String(
                    attribute
                        .text
                        .as_ref()
                        .map(|t| t.value.clone())
                        .unwrap_or_default(),
                )
            };
            (attribute.name.clone(), value)
        })
        .collect()
}

fn state_name(state: i32) -> String {
    TaskState::try_from(state)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| state.to_string())
}

/// Parses our Mesos-style JSON of a message back into a JSON value.
fn proto_json<M: prost_reflect::ReflectMessage>(message: &M) -> Value {
    serde_json::from_str(&codec::to_json(message)).unwrap_or(Value::Null)
}

fn status_json(status: &TaskStatus) -> Value {
    let mut out = Map::new();
    out.insert("state".into(), Value::String(state_name(status.state)));
    out.insert(
        "timestamp".into(),
        json!(status.timestamp.unwrap_or_default()),
    );
    if let Some(labels) = &status.labels {
        out.insert("labels".into(), proto_json(labels));
    }
    if let Some(container_status) = &status.container_status {
        out.insert("container_status".into(), proto_json(container_status));
    }
    if let Some(healthy) = status.healthy {
        out.insert("healthy".into(), json!(healthy));
    }
    Value::Object(out)
}

fn role_of(resources: &[Resource]) -> String {
    resources
        .first()
        .and_then(|r| {
            r.allocation_info
                .as_ref()
                .and_then(|a| a.role.clone())
                .or_else(|| {
                    #[allow(deprecated)]
                    let role = r.role.clone();
                    role
                })
        })
        .unwrap_or_else(|| "*".to_string())
}

/// A task as Mesos's `json(JSON::ObjectWriter*, const Task&)` writes it.
pub fn task_json(task: &Task) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(task.task_id.value));
    out.insert("name".into(), json!(task.name));
    out.insert("framework_id".into(), json!(task.framework_id.value));
    out.insert(
        "executor_id".into(),
        json!(task
            .executor_id
            .as_ref()
            .map(|e| e.value.clone())
            .unwrap_or_default()),
    );
    out.insert("slave_id".into(), json!(task.agent_id.value));
    out.insert("state".into(), Value::String(state_name(task.state)));
    out.insert(
        "resources".into(),
        Value::Object(resources_json(&task.resources)),
    );
    out.insert("role".into(), json!(role_of(&task.resources)));
    out.insert(
        "statuses".into(),
        Value::Array(task.statuses.iter().map(status_json).collect()),
    );
    if let Some(user) = &task.user {
        out.insert("user".into(), json!(user));
    }
    if let Some(labels) = &task.labels {
        out.insert("labels".into(), proto_json(labels));
    }
    if let Some(container) = &task.container {
        out.insert("container".into(), proto_json(container));
    }
    Value::Object(out)
}

fn executor_json(slave: &Slave, framework_id: &str, executor: &Executor) -> Value {
    let info = &executor.info;
    #[allow(deprecated)]
    let source = info.source.clone().unwrap_or_default();
    let mut out = Map::new();
    out.insert("id".into(), json!(info.executor_id.value));
    out.insert("name".into(), json!(info.name.clone().unwrap_or_default()));
    out.insert("source".into(), json!(source));
    out.insert("container".into(), json!(executor.container_id));
    out.insert(
        "directory".into(),
        json!(executor.sandbox.display().to_string()),
    );
    out.insert("framework_id".into(), json!(framework_id));
    let mut allocated = info.resources.clone();
    allocated.extend(
        executor
            .launched_tasks()
            .flat_map(|t| t.resources.iter().cloned()),
    );
    out.insert(
        "resources".into(),
        Value::Object(resources_json(&allocated)),
    );
    if !info.resources.is_empty() {
        out.insert("role".into(), json!(role_of(&info.resources)));
    }
    if let Some(labels) = &info.labels {
        out.insert("labels".into(), proto_json(labels));
    }
    out.insert(
        "tasks".into(),
        Value::Array(executor.launched_tasks().map(task_json).collect()),
    );
    let queued: Vec<Value> = executor
        .queued_task_infos()
        .into_iter()
        .map(|t| {
            task_json(&Task {
                name: t.name.clone(),
                task_id: t.task_id.clone(),
                framework_id: mesos_proto::v1::FrameworkId {
                    value: framework_id.to_string(),
                },
                agent_id: slave.info().id.clone().unwrap_or_default(),
                state: TaskState::TaskStaging as i32,
                resources: t.resources.clone(),
                ..Task::default()
            })
        })
        .collect();
    out.insert("queued_tasks".into(), Value::Array(queued));
    out.insert(
        "completed_tasks".into(),
        Value::Array(executor.finished_tasks().map(task_json).collect()),
    );
    Value::Object(out)
}

fn framework_json(slave: &Slave, framework: &Framework) -> Value {
    let info = &framework.info;
    let id = info
        .id
        .as_ref()
        .map(|i| i.value.clone())
        .unwrap_or_default();
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    out.insert("name".into(), json!(info.name));
    out.insert("user".into(), json!(info.user));
    out.insert(
        "failover_timeout".into(),
        json!(info.failover_timeout.unwrap_or(0.0)),
    );
    out.insert("checkpoint".into(), json!(info.checkpoint.unwrap_or(false)));
    out.insert(
        "hostname".into(),
        json!(info.hostname.clone().unwrap_or_default()),
    );
    if let Some(principal) = &info.principal {
        out.insert("principal".into(), json!(principal));
    }
    let multi_role = info.capabilities.iter().any(|c| {
        c.r#type == Some(mesos_proto::v1::framework_info::capability::Type::MultiRole as i32)
    });
    if multi_role {
        out.insert("roles".into(), json!(info.roles));
    } else {
        #[allow(deprecated)]
        let role = info.role.clone().unwrap_or_else(|| "*".into());
        out.insert("role".into(), json!(role));
    }
    out.insert(
        "executors".into(),
        Value::Array(
            framework
                .executors()
                .map(|e| executor_json(slave, &id, e))
                .collect(),
        ),
    );
    out.insert(
        "completed_executors".into(),
        Value::Array(
            framework
                .completed_executors()
                .map(|e| executor_json(slave, &id, e))
                .collect(),
        ),
    );
    Value::Object(out)
}

/// The body of `/state`.
pub fn state_json(slave: &Slave) -> Value {
    let info = slave.info();
    let total = resources_json(slave.total_resources());
    let capabilities: Vec<String> = capabilities()
        .iter()
        .filter_map(|c| c.r#type)
        .filter_map(|t| mesos_proto::v1::agent_info::capability::Type::try_from(t).ok())
        .map(|t| t.as_str_name().to_string())
        .collect();
    json!({
        "version": MESOS_VERSION,
        "build_date": "",
        "build_time": 0,
        "build_user": "",
        "start_time": slave.start_time(),
        "id": info.id.as_ref().map(|i| i.value.clone()).unwrap_or_default(),
        "pid": slave.upid().to_string(),
        "hostname": info.hostname,
        "capabilities": capabilities,
        "resources": total,
        "reserved_resources": {},
        "unreserved_resources": total,
        "reserved_resources_allocated": {},
        "unreserved_resources_allocated": resources_json(&slave.used_resources()),
        "attributes": attributes_json(&info.attributes),
        "flags": slave.flags().to_map(),
        "frameworks": slave.frameworks().map(|f| framework_json(slave, f)).collect::<Vec<_>>(),
        "completed_frameworks": slave
            .completed_frameworks()
            .map(|f| framework_json(slave, f))
            .collect::<Vec<_>>(),
    })
}

fn scalar_total(resources: &[Resource], name: &str) -> f64 {
    resources
        .iter()
        .filter(|r| r.name == name)
        .filter_map(|r| r.scalar.as_ref())
        .map(|s| s.value)
        // Not `sum()`: an empty f64 sum is -0.0, which shows in JSON.
        .fold(0.0, |total, value| total + value)
}

/// The agent's metrics, with Mesos's `slave/*` names.
pub fn metrics(slave: &Slave) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    let mut set = |name: &str, value: f64| {
        m.insert(format!("slave/{name}"), value);
    };
    set(
        "registered",
        f64::from(u8::from(slave.state() == SlaveState::Running)),
    );
    set(
        "uptime_secs",
        crate::executor_api::now_secs() - slave.start_time(),
    );
    set("recovery_errors", f64::from(slave.recovery_errors()));
    let mut executors: BTreeMap<&str, f64> = ["registering", "running", "terminating"]
        .into_iter()
        .map(|s| (s, 0.0))
        .collect();
    let mut tasks: BTreeMap<&str, f64> = ["staging", "starting", "running", "killing"]
        .into_iter()
        .map(|s| (s, 0.0))
        .collect();
    let mut frameworks_active = 0.0;
    for framework in slave.frameworks() {
        frameworks_active += 1.0;
        for executor in framework.executors() {
            let key = match executor.state_name() {
                "REGISTERING" => "registering",
                "RUNNING" => "running",
                "TERMINATING" => "terminating",
                _ => continue,
            };
            *executors.entry(key).or_default() += 1.0;
            *tasks.entry("staging").or_default() += executor.queued_task_infos().len() as f64;
            for task in executor.launched_tasks() {
                let key = match TaskState::try_from(task.state) {
                    Ok(TaskState::TaskStaging) => "staging",
                    Ok(TaskState::TaskStarting) => "starting",
                    Ok(TaskState::TaskRunning) => "running",
                    Ok(TaskState::TaskKilling) => "killing",
                    _ => continue,
                };
                *tasks.entry(key).or_default() += 1.0;
            }
        }
    }
    set("frameworks_active", frameworks_active);
    for (state, count) in executors {
        set(&format!("executors_{state}"), count);
    }
    let counters = slave.counters();
    set("executors_terminated", counters.executors_terminated as f64);
    set("executors_preempted", 0.0);
    for (state, count) in tasks {
        set(&format!("tasks_{state}"), count);
    }
    for state in [
        "finished", "failed", "killed", "lost", "error", "dropped", "gone",
    ] {
        let count = counters.terminal_tasks.get(state).copied().unwrap_or(0);
        set(&format!("tasks_{state}"), count as f64);
    }
    set("valid_status_updates", counters.valid_status_updates as f64);
    set(
        "invalid_status_updates",
        counters.invalid_status_updates as f64,
    );
    set(
        "valid_framework_messages",
        counters.valid_framework_messages as f64,
    );
    set(
        "invalid_framework_messages",
        counters.invalid_framework_messages as f64,
    );
    set(
        "container_launch_errors",
        counters.container_launch_errors as f64,
    );
    set(
        "executor_directory_max_allowed_age_secs",
        slave.flags().gc_delay.get().as_secs_f64(),
    );
    let total = slave.total_resources();
    let used = slave.used_resources();
    for name in ["cpus", "mem", "disk", "gpus"] {
        let t = scalar_total(total, name);
        let u = scalar_total(&used, name);
        set(&format!("{name}_total"), t);
        set(&format!("{name}_used"), u);
        set(
            &format!("{name}_percent"),
            if t > 0.0 { u / t } else { 0.0 },
        );
    }
    m
}

/// `/state`; 503 while the agent recovers, as Mesos (its frameworks and
/// tasks are not all known yet, and a partial view looks like lost tasks).
async fn state(State(slave): State<SlaveHandle>) -> axum::response::Response {
    let slave = slave.lock();
    if slave.state() == SlaveState::Recovering {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Agent has not finished recovery",
        )
            .into_response();
    }
    Json(state_json(&slave)).into_response()
}

async fn flags(State(slave): State<SlaveHandle>) -> Json<Value> {
    Json(json!({ "flags": slave.lock().flags().to_map() }))
}

async fn health() -> StatusCode {
    StatusCode::OK
}

async fn version() -> Json<Value> {
    Json(json!({
        "version": MESOS_VERSION,
        "build_date": "",
        "build_time": 0,
        "build_user": "",
        "git_tag": MESOS_VERSION,
    }))
}

async fn metrics_snapshot(State(slave): State<SlaveHandle>) -> Json<BTreeMap<String, f64>> {
    Json(metrics(&slave.lock()))
}

/// `/monitor/statistics`: per live executor, its ids and the container's
/// ResourceStatistics from the isolator.
async fn monitor_statistics(State(slave): State<SlaveHandle>) -> impl IntoResponse {
    let (containers, entries) = {
        let slave = slave.lock();
        let entries: Vec<(Value, String)> = slave
            .frameworks()
            .flat_map(|f| {
                let framework_id = f
                    .info
                    .id
                    .as_ref()
                    .map(|i| i.value.clone())
                    .unwrap_or_default();
                f.executors().map(move |e| {
                    #[allow(deprecated)]
                    let source = e.info.source.clone().unwrap_or_default();
                    let entry = json!({
                        "executor_id": e.info.executor_id.value,
                        "executor_name": e.info.name.clone().unwrap_or_default(),
                        "framework_id": framework_id,
                        "source": source,
                    });
                    (entry, e.container_id.clone())
                })
            })
            .collect();
        (slave.containers(), entries)
    };
    let mut out = Vec::new();
    for (mut entry, container_id) in entries {
        // Containers that ended meanwhile are left out, as in Mesos.
        let Ok(statistics) = containers.usage(&container_id).await else {
            continue;
        };
        if let Value::Object(map) = &mut entry {
            map.insert("statistics".into(), proto_json(&statistics));
        }
        out.push(entry);
    }
    Json(Value::Array(out))
}

/// The operator routes (both `/x` and `/slave(1)/x`).
pub fn router(slave: SlaveHandle) -> Router {
    let mut router = Router::new()
        .route("/version", get(version))
        .route("/timeline", get(timeline))
        .route("/metrics/snapshot", get(metrics_snapshot))
        .route("/monitor/statistics", get(monitor_statistics))
        .route("/monitor/statistics.json", get(monitor_statistics));
    for prefix in ["", "/slave(1)"] {
        router = router
            .route(&format!("{prefix}/state"), get(state))
            .route(&format!("{prefix}/state.json"), get(state))
            .route(&format!("{prefix}/flags"), get(flags))
            .route(&format!("{prefix}/health"), get(health));
    }
    router.with_state(slave)
}

/// Helper for tests and tools: a scalar resource.
pub fn scalar_resource(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.to_string(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Resource::default()
    }
}

/// `GET /timeline`: each task's seed-step marks recorded by this agent (see
/// `mesos-timeline`); `mesos-local` merges it with the master's.
async fn timeline() -> Json<Value> {
    Json(mesos_timeline::Timeline::global().to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_render_like_mesos() {
        let ports = Resource {
            name: "ports".into(),
            r#type: value::Type::Ranges as i32,
            ranges: Some(value::Ranges {
                range: vec![value::Range {
                    begin: 31000,
                    end: 32000,
                }],
            }),
            ..Resource::default()
        };
        let json = resources_json(&[
            scalar_resource("cpus", 0.1),
            scalar_resource("cpus", 0.2),
            scalar_resource("mem", 32.0),
            ports,
        ]);
        assert_eq!(
            Value::Object(json),
            json!({"cpus": 0.3, "gpus": 0.0, "mem": 32.0, "disk": 0.0, "ports": "[31000-32000]"})
        );
    }

    #[test]
    fn attributes_render_as_numbers_and_text() {
        let attributes = vec![
            Attribute {
                name: "rack".into(),
                r#type: value::Type::Scalar as i32,
                scalar: Some(value::Scalar { value: 2.0 }),
                ..Attribute::default()
            },
            Attribute {
                name: "os".into(),
                r#type: value::Type::Text as i32,
                text: Some(value::Text {
                    value: "debian".into(),
                }),
                ..Attribute::default()
            },
        ];
        assert_eq!(
            Value::Object(attributes_json(&attributes)),
            json!({"rack": 2.0, "os": "debian"})
        );
    }
}
