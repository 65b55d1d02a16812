//! [`Containers`] over `mesos-containerizer` (the Linux launcher): cgroups
//! from `--isolation` through `mesos-isolator`, namespaces, sandbox and
//! image rootfs, with the agent's flags mapped onto the containerizer's
//! configuration.

use std::collections::BTreeMap;

use mesos_containerizer::{
    CommandSpec, Containerizer, ContainerizerConfig, LaunchRequest, Termination,
};
use mesos_isolator::{
    CgroupsConfig, ContainerLimits, Isolation, Isolator, LimitationReason, Usage,
};
use mesos_proto::v1::task_status::Reason;
use mesos_proto::v1::{Resource, ResourceStatistics};

use crate::containers::{
    BoxFuture, ContainerError, ContainerLaunch, ContainerTermination, Containers, KnownContainer,
    LaunchedContainer, Limitation, RecoveredContainer,
};
use crate::flags::Flags;

const MB: f64 = 1024.0 * 1024.0;

/// The containerizer, as the agent uses it.
#[derive(Debug, Clone)]
pub struct MesosContainers {
    containerizer: Containerizer,
}

fn isolator(flags: &Flags) -> Result<Isolator, String> {
    let isolation: Isolation = flags
        .isolation
        .parse()
        .map_err(|e| format!("invalid value for flag '--isolation': {e}"))?;
    let config = CgroupsConfig {
        hierarchy: flags.cgroups_hierarchy.clone(),
        root: flags.cgroups_root.clone(),
        enable_cfs: flags.cgroups_enable_cfs,
        limit_swap: flags.cgroups_limit_swap,
        pids_max: flags.cgroups_pids_max,
        destroy_timeout: flags.cgroups_destroy_timeout.get(),
    };
    let isolator = Isolator::new(config, isolation).map_err(|e| e.to_string())?;
    // Mesos's agent moves itself into `<root>/agent/leaf` on cgroups v2, so the
    // cgroups above the containers hold no process and can enable controllers
    // for them (no-internal-process rule). A no-op on v1.
    let pid = i32::try_from(std::process::id()).map_err(|e| e.to_string())?;
    isolator
        .move_agent_to_leaf(pid)
        .map_err(|e| format!("cannot move the agent into its cgroup leaf: {e}"))?;
    Ok(isolator)
}

/// Builds the containerizer from the agent's flags.
pub fn create(flags: &Flags) -> Result<MesosContainers, String> {
    let isolator = isolator(flags)?;
    let mut config = ContainerizerConfig::new(
        &flags.work_dir,
        flags.runtime_dir(),
        flags.launcher_dir(),
        isolator,
    );
    config.switch_user = flags.switch_user;
    config.sandbox_directory = flags.sandbox_directory.clone();
    config.oci_store_dir = flags.oci_store_dir.clone();
    if let Some(providers) = &flags.image_providers {
        config.image_providers = providers
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect::<Result<_, String>>()?;
    }
    let containerizer = Containerizer::new(config).map_err(|e| e.to_string())?;
    Ok(MesosContainers { containerizer })
}

fn scalar(resources: &[Resource], name: &str) -> f64 {
    resources
        .iter()
        .filter(|r| r.name == name)
        .filter_map(|r| r.scalar.as_ref())
        .map(|s| s.value)
        // Not `sum()`: an empty f64 sum is -0.0, which shows in JSON.
        .fold(0.0, |total, value| total + value)
}

/// cgroup requests and limits from the container's resources and
/// `TaskInfo.limits` (mem in MB, as Mesos).
pub fn container_limits(resources: &[Resource], limits: &BTreeMap<String, f64>) -> ContainerLimits {
    let mut out = ContainerLimits::new(
        scalar(resources, "cpus"),
        (scalar(resources, "mem") * MB) as u64,
    );
    out.cpus_limit = limits.get("cpus").copied();
    out.mem_limit_bytes = limits.get("mem").map(|mb| {
        if mb.is_infinite() {
            u64::MAX
        } else {
            (mb * MB) as u64
        }
    });
    let pids = scalar(resources, "pids");
    out.pids = (pids > 0.0).then_some(pids as u64);
    out
}

fn command(launch: &ContainerLaunch) -> CommandSpec {
    let info = launch.executor_info.command.clone().unwrap_or_default();
    CommandSpec {
        shell: info.shell.unwrap_or(true),
        value: info.value.unwrap_or_default(),
        arguments: info.arguments,
        env: launch.environment.clone(),
        user: launch.user.clone(),
    }
}

fn image_name(launch: &ContainerLaunch) -> Option<String> {
    let container = launch
        .executor_info
        .container
        .as_ref()
        .or_else(|| launch.task_info.as_ref().and_then(|t| t.container.as_ref()))?;
    let image = container.mesos.as_ref()?.image.as_ref()?;
    image.docker.as_ref().map(|d| d.name.clone())
}

fn statistics(usage: Usage) -> ResourceStatistics {
    ResourceStatistics {
        timestamp: usage.timestamp,
        processes: usage.processes,
        cpus_user_time_secs: usage.cpus_user_time_secs,
        cpus_system_time_secs: usage.cpus_system_time_secs,
        cpus_limit: usage.cpus_limit,
        cpus_nr_periods: usage.cpus_nr_periods,
        cpus_nr_throttled: usage.cpus_nr_throttled,
        cpus_throttled_time_secs: usage.cpus_throttled_time_secs,
        mem_total_bytes: usage.mem_total_bytes,
        mem_anon_bytes: usage.mem_anon_bytes,
        mem_file_bytes: usage.mem_file_bytes,
        mem_limit_bytes: usage.mem_limit_bytes,
        mem_soft_limit_bytes: usage.mem_low_bytes,
        ..ResourceStatistics::default()
    }
}

fn termination(t: Termination) -> ContainerTermination {
    ContainerTermination {
        status: t.status,
        limitation: t.limitation.map(|l| Limitation {
            reason: match l.reason {
                LimitationReason::Memory => Reason::ContainerLimitationMemory,
            },
            message: l.message,
        }),
        message: t.message,
    }
}

fn error(container_id: &str, message: impl ToString) -> ContainerError {
    ContainerError {
        container_id: container_id.to_string(),
        message: message.to_string(),
    }
}

impl Containers for MesosContainers {
    fn launch(
        &self,
        launch: ContainerLaunch,
    ) -> BoxFuture<Result<LaunchedContainer, ContainerError>> {
        let containerizer = self.containerizer.clone();
        Box::pin(async move {
            let container_info = launch
                .executor_info
                .container
                .as_ref()
                .or_else(|| launch.task_info.as_ref().and_then(|t| t.container.as_ref()));
            let request = LaunchRequest {
                container_id: launch.container_id.clone(),
                agent_id: launch.agent_id.clone(),
                framework_id: launch
                    .framework_info
                    .id
                    .as_ref()
                    .map(|i| i.value.clone())
                    .unwrap_or_default(),
                executor_id: launch.executor_info.executor_id.value.clone(),
                command: command(&launch),
                limits: container_limits(&launch.resources, &launch.limits),
                hostname: container_info.and_then(|c| c.hostname.clone()),
                image: image_name(&launch),
                rlimits: Vec::new(),
                checkpoint: launch.framework_info.checkpoint.unwrap_or(false),
            };
            let launched = containerizer
                .launch(request)
                .await
                .map_err(|e| error(&launch.container_id, e))?;
            let pid = u32::try_from(launched.pid)
                .map_err(|_| error(&launch.container_id, format!("bad pid {}", launched.pid)))?;
            Ok(LaunchedContainer {
                pid,
                steps: wall_clock_steps(&launched.timings),
            })
        })
    }

    fn wait(&self, container_id: &str) -> BoxFuture<Result<ContainerTermination, ContainerError>> {
        let containerizer = self.containerizer.clone();
        let id = container_id.to_string();
        Box::pin(async move {
            containerizer
                .wait(&id)
                .await
                .map(termination)
                .map_err(|e| error(&id, e))
        })
    }

    fn destroy(&self, container_id: &str) -> BoxFuture<Result<(), ContainerError>> {
        let containerizer = self.containerizer.clone();
        let id = container_id.to_string();
        Box::pin(async move {
            match containerizer.destroy(&id).await {
                Ok(()) => Ok(()),
                // Already destroyed: destroy is idempotent for the agent.
                Err(mesos_containerizer::ContainerizerError::UnknownContainer(_)) => Ok(()),
                Err(e) => Err(error(&id, e)),
            }
        })
    }

    fn usage(&self, container_id: &str) -> BoxFuture<Result<ResourceStatistics, ContainerError>> {
        let containerizer = self.containerizer.clone();
        let id = container_id.to_string();
        Box::pin(async move {
            containerizer
                .usage(&id)
                .await
                .map(statistics)
                .map_err(|e| error(&id, e))
        })
    }

    fn update(
        &self,
        container_id: &str,
        resources: Vec<Resource>,
        limits: BTreeMap<String, f64>,
    ) -> BoxFuture<Result<(), ContainerError>> {
        let containerizer = self.containerizer.clone();
        let id = container_id.to_string();
        Box::pin(async move {
            containerizer
                .update(&id, &container_limits(&resources, &limits))
                .await
                .map_err(|e| error(&id, e))
        })
    }

    fn recover(
        &self,
        known: Vec<KnownContainer>,
    ) -> BoxFuture<Result<Vec<RecoveredContainer>, ContainerError>> {
        let containerizer = self.containerizer.clone();
        Box::pin(async move {
            let ids: Vec<String> = known.iter().map(|k| k.container_id.clone()).collect();
            // The isolator destroys the cgroups of every container not in
            // `ids` (killing what runs there); the containerizer removes
            // their runtime directories and re-supervises the known ones.
            let recovered = containerizer
                .recover(&ids)
                .await
                .map_err(|e| error("(recovery)", e))?;
            Ok(recovered
                .into_iter()
                .map(|r| RecoveredContainer {
                    pid: r.pid.and_then(|pid| u32::try_from(pid).ok()),
                    container_id: r.container_id,
                    running: r.running,
                })
                .collect())
        })
    }
}

/// The containerizer times its steps on `CLOCK_MONOTONIC`; the timeline
/// wants wall-clock seconds, so shift by the offset between the two now.
fn wall_clock_steps(timings: &mesos_containerizer::LaunchTimings) -> Vec<(&'static str, f64)> {
    let monotonic_now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
        .unwrap_or_default();
    let wall_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let offset = wall_now - monotonic_now;
    timings
        .steps()
        .into_iter()
        .map(|(step, ns)| (step.name(), offset + ns as f64 / 1e9))
        .chain(std::iter::once((
            "exec confirmed",
            offset + timings.confirmed as f64 / 1e9,
        )))
        .collect()
}

#[cfg(test)]
mod tests {
    use mesos_proto::v1::value;

    use super::*;

    fn scalar_resource(name: &str, amount: f64) -> Resource {
        Resource {
            name: name.into(),
            r#type: value::Type::Scalar as i32,
            scalar: Some(value::Scalar { value: amount }),
            ..Resource::default()
        }
    }

    #[test]
    fn limits_sum_executor_and_task_resources() {
        let resources = [
            scalar_resource("cpus", 0.1),
            scalar_resource("mem", 32.0),
            scalar_resource("cpus", 0.5),
            scalar_resource("mem", 64.0),
        ];
        let limits = container_limits(&resources, &BTreeMap::from([("mem".to_string(), 128.0)]));
        assert!((limits.cpus - 0.6).abs() < 1e-9);
        assert_eq!(limits.mem_bytes, 96 << 20);
        assert_eq!(limits.mem_limit_bytes, Some(128 << 20));
        assert_eq!(limits.cpus_limit, None);
        let unlimited = container_limits(
            &resources,
            &BTreeMap::from([("cpus".to_string(), f64::INFINITY)]),
        );
        assert_eq!(unlimited.cpus_limit, Some(f64::INFINITY));
    }
}
