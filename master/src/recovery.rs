//! Master recovery after a restart (`Master::recover`, `_recover` and
//! `recoveredSlavesTimeout`, src/master/master.cpp).
//!
//! The registrar reads the registry; the master then knows
//!
//! * which agents were admitted: they are *recovered* agents, expected to
//!   re-register (`reregistration.rs`) with their tasks and executors
//!   within `--agent_reregister_timeout`; the rest are marked unreachable
//!   then, unless that would be more than `--recovery_agent_removal_limit`
//!   of them, in which case the master exits as Mesos does;
//! * which agents are unreachable, to answer reconciliation;
//! * which frameworks exist: they come back as *recovered* frameworks
//!   (known, not connected, no failover timeout, as Mesos's frameworks
//!   recovered from re-registering agents) that hold their tasks until they
//!   re-subscribe with their id; removed ones may not subscribe again.
//!
//! Recovery only reads the registry, so it is quick; the scheduler API
//! answers 503 "Master has not finished recovery" and agent messages are
//! dropped until it is done. Frameworks can subscribe while agents are
//! still re-registering, as in Mesos; reconciliation of a task that may be
//! on a recovered agent gets no answer until that agent re-registers or
//! is marked unreachable.

use std::sync::atomic::Ordering;

use crate::flags::format_duration;
use crate::master::{Command, Master, MasterError};
use crate::registry::{Registry, RegistryError};

impl Master {
    /// The registrar's answer to recovery.
    pub(crate) fn recovered_registry(&mut self, result: Result<Registry, RegistryError>) {
        match result {
            Ok(registry) => {
                self.recover(registry);
                if let Some(recovery) = self.recovery.take() {
                    let _ = recovery.send(Ok(()));
                }
            }
            Err(error) => {
                tracing::error!(%error, "recovery failed");
                // `start` reports the error; the master task just stops.
                if let Some(recovery) = self.recovery.take() {
                    let _ = recovery.send(Err(error));
                }
                self.fatal = Some(MasterError::Registry(RegistryError::Stopped));
            }
        }
    }

    /// Takes over what the registry knows.
    fn recover(&mut self, registry: Registry) {
        for info in registry.admitted() {
            if let Some(id) = &info.id {
                self.recovered_agents.insert(id.value.clone(), info.clone());
            }
        }
        for (id, time) in registry.unreachable() {
            self.unreachable_agents.insert(id.to_string(), time);
        }
        for (id, record) in &registry.frameworks {
            if record.removed_time.is_some() {
                self.removed_frameworks.insert(id.clone());
            } else {
                self.recover_framework(record.info.clone());
            }
        }
        if !self.recovered_agents.is_empty() {
            self.after(
                self.flags.agent_reregister_timeout,
                Command::ReregisterTimeout {
                    expected: self.recovered_agents.len(),
                },
            );
        }
        self.recovered.store(true, Ordering::Release);
        tracing::info!(
            agents = self.recovered_agents.len(),
            unreachable = self.unreachable_agents.len(),
            frameworks = self.frameworks.len(),
            previous_master = registry
                .master
                .as_ref()
                .map(|m| m.id.as_str())
                .unwrap_or("none"),
            "recovered the registry; allowing {} for agents to re-register",
            format_duration(self.flags.agent_reregister_timeout)
        );
    }

    /// `--agent_reregister_timeout` expired: recovered agents that did not
    /// re-register (and are not doing so right now) are marked unreachable.
    /// `expected` is the number of agents the registry listed.
    pub(crate) fn reregister_timeout(&mut self, expected: usize) {
        let missing: Vec<String> = self
            .recovered_agents
            .keys()
            .filter(|id| !self.reregistering.contains(*id))
            .cloned()
            .collect();
        if missing.is_empty() {
            return;
        }
        // As Mesos: agents still re-registering count as not back yet.
        let not_back = self.recovered_agents.len();
        let share = not_back as f64 / expected.max(1) as f64;
        let limit = self.flags.recovery_agent_removal_limit.0;
        if share > limit {
            tracing::error!(
                "Post-recovery agent removal limit exceeded! {not_back} of the {expected} agents \
                 recovered from the registry ({:.1}%) did not re-register within {}; the limit \
                 is {:.1}% (--recovery_agent_removal_limit). Investigate or raise the limit.",
                share * 100.0,
                format_duration(self.flags.agent_reregister_timeout),
                limit * 100.0
            );
            self.fatal = Some(MasterError::RemovalLimit {
                missing: not_back,
                total: expected,
            });
            return;
        }
        let why = format!(
            "did not reregister within {} after master failover",
            format_duration(self.flags.agent_reregister_timeout)
        );
        for id in missing {
            if let Some(info) = self.recovered_agents.get(&id).cloned() {
                tracing::warn!(agent = %id, "{why}; marking it unreachable");
                self.mark_unreachable(info, true, why.clone());
            }
        }
    }

    /// A recovered agent was marked unreachable without having
    /// re-registered: there are no tasks to update (the master never
    /// learnt them); frameworks are told the agent is lost (FAILURE), and
    /// reconciliation reports its tasks unreachable (TASK_LOST for
    /// frameworks that are not PARTITION_AWARE).
    pub(crate) fn recovered_agent_lost(&mut self, agent_id: &str) {
        self.recovered_agents.remove(agent_id);
        self.broadcast_agent_lost(agent_id);
    }
}
