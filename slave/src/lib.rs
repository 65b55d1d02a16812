//! `mesos-agent`: the Mesos agent (slave). See `docs/architecture.md`.
//!
//! | concern | module |
//! |---|---|
//! | flags (`--work_dir`, `MESOS_*`, stout durations) | [`flags`], [`duration`] |
//! | total resources (`--resources` + detection), `--attributes` | [`resources`], [`attributes`] |
//! | registering with the master, noticing it is gone | [`registration`], [`master_link`] |
//! | seed step 6: RunTask, command executor synthesis | [`slave`], [`command_executor`] |
//! | seed step 7: executor launch in a container | [`slave`], [`containers`] → [`mesos_containers`] (Linux launcher) or [`posix_containers`] |
//! | seed step 8: SUBSCRIBE → LAUNCH, UPDATE → ACKNOWLEDGED | [`executor_api`], [`executor_env`] |
//! | reliable, ordered updates and their checkpoint | [`status_update_manager`], [`paths`] |
//! | checkpointing under `<work_dir>/meta`, reading it back | [`checkpoint`], [`state`] |
//! | recovery after a restart (re-attach executors, replay updates) | [`slave`] (`slave/recovery.rs`) |
//! | `/state`, `/flags`, `/metrics/snapshot`, `/monitor/statistics`, ... | [`http`] |
//! | `/files/*` over sandboxes only | [`files`] |
//! | wiring it all into a server | [`agent`] |

pub mod agent;
pub mod attributes;
pub mod checkpoint;
pub mod command_executor;
pub mod containers;
pub mod duration;
pub mod executor_api;
pub mod executor_env;
pub mod files;
pub mod flags;
pub mod http;
pub mod master_link;
pub mod mesos_containers;
pub mod paths;
pub mod posix_containers;
pub mod registration;
pub mod resources;
pub mod slave;
pub mod state;
pub mod status_update_manager;
