//! The registry: what a restarted master must know to lose nothing (Mesos's
//! `Registry`, src/master/registry.proto, and its operations,
//! src/master/registry_operations.cpp).
//!
//! * Admitted agents (their `AgentInfo`, id set) and agents marked
//!   unreachable (with the time), so that a restarted master expects the
//!   former to re-register and answers reconciliation about the latter.
//! * Frameworks (their `FrameworkInfo`), removed ones marked, so that a
//!   framework can re-subscribe with its id after a restart and a removed
//!   one cannot come back. (Mesos 1.11 does not persist frameworks,
//!   MESOS-1719; we do, which only adds the "removed stays removed" rule.)
//! * The last master that recovered the registry.
//!
//! The registry changes only through [`Operation`]s, applied in order by the
//! registrar (`registrar.rs`) and written to a [`Store`] before the master
//! acts on them. Two stores, chosen by `--registry` as in Mesos:
//!
//! * `replicated_log` (the default): [`durable::DurableStore`], a redb
//!   database at `<work_dir>/registry.redb`, each write committed (fsync'd)
//!   before it is reported done. It plays the part of Mesos's replicated
//!   log for a single master (there is no HA mode, hence no replication).
//! * `in_memory`: [`InMemoryStore`]; the registry dies with the master.

pub mod durable;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use mesos_proto::v1::{AgentInfo, FrameworkInfo, MasterInfo};

use crate::flags::Flags;

/// File name of the durable registry under `--work_dir`.
pub const REGISTRY_FILE: &str = "registry.redb";

/// What the registry holds about one agent.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentRecord {
    /// The AgentInfo it was admitted (or last re-registered) with, id set.
    #[prost(message, required, tag = "1")]
    pub info: AgentInfo,
    /// Set while the agent is unreachable: when it was marked so, in
    /// seconds since the epoch.
    #[prost(double, optional, tag = "2")]
    pub unreachable_time: Option<f64>,
}

/// What the registry holds about one framework.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FrameworkRecord {
    /// The FrameworkInfo of its last subscription, id set.
    #[prost(message, required, tag = "1")]
    pub info: FrameworkInfo,
    /// Set once the framework is removed (TEARDOWN, failover timeout): when,
    /// in seconds since the epoch. A removed framework cannot re-subscribe.
    #[prost(double, optional, tag = "2")]
    pub removed_time: Option<f64>,
}

/// The registry's contents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registry {
    /// The master that recovered the registry last.
    pub master: Option<MasterInfo>,
    /// Agents by id: admitted, or unreachable (`unreachable_time` set).
    pub agents: BTreeMap<String, AgentRecord>,
    /// Frameworks by id, removed ones included.
    pub frameworks: BTreeMap<String, FrameworkRecord>,
}

impl Registry {
    /// Admitted (not unreachable) agents.
    pub fn admitted(&self) -> impl Iterator<Item = &AgentInfo> {
        self.agents
            .values()
            .filter(|r| r.unreachable_time.is_none())
            .map(|r| &r.info)
    }

    /// Unreachable agents: (id, time marked unreachable).
    pub fn unreachable(&self) -> impl Iterator<Item = (&str, f64)> {
        self.agents
            .iter()
            .filter_map(|(id, r)| Some((id.as_str(), r.unreachable_time?)))
    }

    fn is_admitted(&self, id: &str) -> bool {
        self.agents
            .get(id)
            .is_some_and(|r| r.unreachable_time.is_none())
    }
}

/// One entry of the registry, as stores write them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// The master record.
    Master,
    /// An agent's record, by agent id.
    Agent(String),
    /// A framework's record, by framework id.
    Framework(String),
}

/// A change to the registry (Mesos's `RegistryOperation`s).
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// The master that recovered the registry (Mesos's registrar records
    /// the new leader on every recovery).
    RecordMaster(MasterInfo),
    /// A new agent registered (`AdmitSlave`).
    AdmitAgent(AgentInfo),
    /// An admitted agent re-registered with a different AgentInfo
    /// (`UpdateSlave`).
    UpdateAgent(AgentInfo),
    /// An unreachable or unknown agent re-registered (`MarkSlaveReachable`).
    MarkAgentReachable(AgentInfo),
    /// An admitted agent failed health checks or did not re-register after
    /// a master restart (`MarkSlaveUnreachable`).
    MarkAgentUnreachable {
        /// The agent.
        agent_id: String,
        /// When, in seconds since the epoch.
        time: f64,
    },
    /// An admitted agent unregistered (shut down gracefully, `RemoveSlave`).
    RemoveAgent {
        /// The agent.
        agent_id: String,
    },
    /// A framework subscribed, or changed its FrameworkInfo.
    AddFramework(FrameworkInfo),
    /// A framework was removed.
    RemoveFramework {
        /// The framework.
        framework_id: String,
        /// When, in seconds since the epoch.
        time: f64,
    },
}

/// An operation that does not apply to the registry as it is. These mean a
/// master bug or an id collision, never a storage problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    /// `AdmitAgent` with an id already admitted.
    #[error("agent {0} is already admitted")]
    AgentAlreadyAdmitted(String),
    /// An operation on an agent that is not admitted.
    #[error("agent {0} is not admitted")]
    AgentNotAdmitted(String),
    /// An AgentInfo or FrameworkInfo without its id.
    #[error("{0} without an id")]
    MissingId(&'static str),
}

impl Operation {
    /// Applies the operation to `registry`. Returns the entry it changed,
    /// or `None` if it changed nothing (e.g. re-admitting an admitted
    /// agent after a master restart).
    pub fn apply(&self, registry: &mut Registry) -> Result<Option<Key>, OperationError> {
        match self {
            Operation::RecordMaster(info) => {
                registry.master = Some(info.clone());
                Ok(Some(Key::Master))
            }
            Operation::AdmitAgent(info) => {
                let id = agent_id(info)?;
                if registry.agents.contains_key(&id) {
                    return Err(OperationError::AgentAlreadyAdmitted(id));
                }
                registry.agents.insert(id.clone(), admitted(info));
                Ok(Some(Key::Agent(id)))
            }
            Operation::UpdateAgent(info) => {
                let id = agent_id(info)?;
                if !registry.is_admitted(&id) {
                    return Err(OperationError::AgentNotAdmitted(id));
                }
                let record = admitted(info);
                if registry.agents.get(&id) == Some(&record) {
                    return Ok(None);
                }
                registry.agents.insert(id.clone(), record);
                Ok(Some(Key::Agent(id)))
            }
            Operation::MarkAgentReachable(info) => {
                let id = agent_id(info)?;
                // Admitted already: the usual case after a master restart,
                // nothing to change. Unreachable, or unknown (its entry was
                // lost, or it registered with another master): admitted now,
                // as Mesos admits an unknown agent that re-registers.
                if registry.is_admitted(&id) {
                    return Ok(None);
                }
                registry.agents.insert(id.clone(), admitted(info));
                Ok(Some(Key::Agent(id)))
            }
            Operation::MarkAgentUnreachable { agent_id, time } => {
                match registry.agents.get_mut(agent_id) {
                    Some(record) if record.unreachable_time.is_none() => {
                        record.unreachable_time = Some(*time);
                        Ok(Some(Key::Agent(agent_id.clone())))
                    }
                    _ => Err(OperationError::AgentNotAdmitted(agent_id.clone())),
                }
            }
            Operation::RemoveAgent { agent_id } => {
                if !registry.is_admitted(agent_id) {
                    return Err(OperationError::AgentNotAdmitted(agent_id.clone()));
                }
                registry.agents.remove(agent_id);
                Ok(Some(Key::Agent(agent_id.clone())))
            }
            Operation::AddFramework(info) => {
                let id = info
                    .id
                    .as_ref()
                    .map(|i| i.value.clone())
                    .ok_or(OperationError::MissingId("FrameworkInfo"))?;
                let record = FrameworkRecord {
                    info: info.clone(),
                    removed_time: None,
                };
                if registry.frameworks.get(&id) == Some(&record) {
                    return Ok(None);
                }
                registry.frameworks.insert(id.clone(), record);
                Ok(Some(Key::Framework(id)))
            }
            Operation::RemoveFramework { framework_id, time } => {
                let Some(record) = registry.frameworks.get_mut(framework_id) else {
                    // Never recorded (the master could not know it): keep
                    // the removal so that the id stays unusable.
                    let info = FrameworkInfo {
                        id: Some(mesos_proto::v1::FrameworkId {
                            value: framework_id.clone(),
                        }),
                        ..Default::default()
                    };
                    let record = FrameworkRecord {
                        info,
                        removed_time: Some(*time),
                    };
                    registry.frameworks.insert(framework_id.clone(), record);
                    return Ok(Some(Key::Framework(framework_id.clone())));
                };
                if record.removed_time.is_some() {
                    return Ok(None);
                }
                record.removed_time = Some(*time);
                Ok(Some(Key::Framework(framework_id.clone())))
            }
        }
    }
}

fn agent_id(info: &AgentInfo) -> Result<String, OperationError> {
    info.id
        .as_ref()
        .map(|i| i.value.clone())
        .ok_or(OperationError::MissingId("AgentInfo"))
}

fn admitted(info: &AgentInfo) -> AgentRecord {
    AgentRecord {
        info: info.clone(),
        unreachable_time: None,
    }
}

/// Why the registry could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// `--work_dir` could not be created.
    #[error("cannot create the registry directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another process has the registry open (another master on the same
    /// `--work_dir`).
    #[error(
        "the registry {path} is in use by another process (another master on this --work_dir?)"
    )]
    Locked {
        /// The registry file.
        path: PathBuf,
    },
    /// The file is not a registry or is damaged.
    #[error(
        "the registry {path} is corrupt: {reason}; move it away to start with an empty \
         registry (agents then re-register as unknown agents and are admitted again)"
    )]
    Corrupt {
        /// The registry file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file could not be opened or read.
    #[error("cannot read the registry {path}: {reason}")]
    Read {
        /// The registry file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A change could not be committed.
    #[error("cannot write the registry {path}: {reason}")]
    Write {
        /// The registry file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The registrar is gone (the master is shutting down).
    #[error("the registrar has stopped")]
    Stopped,
}

/// Where the registry lives. Implementations are used from the registrar's
/// thread only, one call at a time.
pub trait Store: Send + 'static {
    /// Opens the store and reads the whole registry (master recovery).
    fn recover(&mut self) -> Result<Registry, RegistryError>;

    /// Durably writes the current value of each of `keys` (an absent value
    /// deletes the entry), all or nothing. When this returns `Ok`, the
    /// change survives a crash of the master.
    fn store(&mut self, registry: &Registry, keys: &BTreeSet<Key>) -> Result<(), RegistryError>;
}

/// `--registry=in_memory`: nothing survives the master.
#[derive(Debug, Default)]
pub struct InMemoryStore;

impl Store for InMemoryStore {
    fn recover(&mut self) -> Result<Registry, RegistryError> {
        Ok(Registry::default())
    }

    fn store(&mut self, _: &Registry, _: &BTreeSet<Key>) -> Result<(), RegistryError> {
        Ok(())
    }
}

/// The store `--registry` and `--work_dir` ask for (flags already
/// validated). Nothing is opened yet: that is part of recovery.
pub fn store_for(flags: &Flags) -> Box<dyn Store> {
    match (flags.registry.as_str(), &flags.work_dir) {
        ("replicated_log", Some(work_dir)) => Box::new(durable::DurableStore::new(work_dir)),
        _ => Box::new(InMemoryStore),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::{AgentId, FrameworkId};

    fn agent(id: &str, hostname: &str) -> AgentInfo {
        AgentInfo {
            id: Some(AgentId {
                value: id.to_string(),
            }),
            hostname: hostname.to_string(),
            ..Default::default()
        }
    }

    fn framework(id: &str) -> FrameworkInfo {
        FrameworkInfo {
            id: Some(FrameworkId {
                value: id.to_string(),
            }),
            user: "root".into(),
            name: "f".into(),
            ..Default::default()
        }
    }

    #[test]
    fn agent_lifecycle_follows_mesos_operations() {
        let mut registry = Registry::default();
        let a = agent("m-S0", "h1");
        assert_eq!(
            Operation::AdmitAgent(a.clone()).apply(&mut registry),
            Ok(Some(Key::Agent("m-S0".into())))
        );
        assert_eq!(
            Operation::AdmitAgent(a.clone()).apply(&mut registry),
            Err(OperationError::AgentAlreadyAdmitted("m-S0".into()))
        );
        // Re-registering after a restart with the same info changes nothing.
        assert_eq!(
            Operation::MarkAgentReachable(a.clone()).apply(&mut registry),
            Ok(None)
        );
        assert_eq!(
            Operation::UpdateAgent(a.clone()).apply(&mut registry),
            Ok(None)
        );
        let moved = agent("m-S0", "h2");
        assert_eq!(
            Operation::UpdateAgent(moved.clone()).apply(&mut registry),
            Ok(Some(Key::Agent("m-S0".into())))
        );
        assert_eq!(registry.admitted().next(), Some(&moved));

        let unreachable = Operation::MarkAgentUnreachable {
            agent_id: "m-S0".into(),
            time: 7.0,
        };
        assert!(unreachable.apply(&mut registry).unwrap().is_some());
        assert_eq!(registry.admitted().count(), 0);
        assert_eq!(registry.unreachable().collect::<Vec<_>>(), [("m-S0", 7.0)]);
        assert_eq!(
            unreachable.apply(&mut registry),
            Err(OperationError::AgentNotAdmitted("m-S0".into()))
        );
        assert_eq!(
            Operation::UpdateAgent(moved.clone()).apply(&mut registry),
            Err(OperationError::AgentNotAdmitted("m-S0".into()))
        );
        // Back from unreachable.
        assert!(Operation::MarkAgentReachable(moved.clone())
            .apply(&mut registry)
            .unwrap()
            .is_some());
        assert_eq!(registry.unreachable().count(), 0);

        assert!(Operation::RemoveAgent {
            agent_id: "m-S0".into()
        }
        .apply(&mut registry)
        .unwrap()
        .is_some());
        assert!(registry.agents.is_empty());
    }

    #[test]
    fn unknown_agent_is_admitted_when_it_reregisters() {
        let mut registry = Registry::default();
        let stranger = agent("other-master-S3", "h");
        assert_eq!(
            Operation::MarkAgentReachable(stranger.clone()).apply(&mut registry),
            Ok(Some(Key::Agent("other-master-S3".into())))
        );
        assert_eq!(registry.admitted().next(), Some(&stranger));
    }

    #[test]
    fn removed_frameworks_stay_removed() {
        let mut registry = Registry::default();
        let info = framework("m-0000");
        assert!(Operation::AddFramework(info.clone())
            .apply(&mut registry)
            .unwrap()
            .is_some());
        assert_eq!(
            Operation::AddFramework(info.clone()).apply(&mut registry),
            Ok(None),
            "an unchanged re-subscription writes nothing"
        );
        let remove = Operation::RemoveFramework {
            framework_id: "m-0000".into(),
            time: 3.0,
        };
        assert!(remove.apply(&mut registry).unwrap().is_some());
        assert_eq!(remove.apply(&mut registry), Ok(None));
        assert_eq!(registry.frameworks["m-0000"].removed_time, Some(3.0));
        // A framework the registry never saw is remembered as removed too.
        let remove = Operation::RemoveFramework {
            framework_id: "x-0001".into(),
            time: 4.0,
        };
        assert!(remove.apply(&mut registry).unwrap().is_some());
        assert_eq!(registry.frameworks["x-0001"].removed_time, Some(4.0));
        assert_eq!(
            Operation::AddFramework(FrameworkInfo::default()).apply(&mut registry),
            Err(OperationError::MissingId("FrameworkInfo"))
        );
    }
}
