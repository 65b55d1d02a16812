//! The Mesos master: DRF allocator, resource offers, the v1 scheduler API,
//! agent management and operator endpoints.
//!
//! Where each seed step of task assignment lives:
//!
//! | step | module |
//! |---|---|
//! | 1. something changes, the allocator runs | [`allocator`] ([`allocator::drf`], [`allocator::filters`]) |
//! | 2. free resources become offers, streamed as OFFERS | `offers`, `scheduler_api` |
//! | 5. ACCEPT with LAUNCH arrives | `scheduler_api`, `launch` |
//! | 6. validation, `RunTaskMessage` to the agent | `validation`, `launch` |
//! | 8. status updates and acknowledgements | `status_updates` |
//!
//! Agents talk to the master with libprocess-style messages
//! ([`mesos_transport`]); frameworks with the v1 scheduler HTTP API. All
//! state lives in one task ([`master`]); start it with [`start`].
//!
//! A restart loses nothing Mesos would keep: admitted agents and frameworks
//! are in the [`registry`] (durable with `--registry=replicated_log`), made
//! durable by the registrar before the master acknowledges them; on start
//! the master recovers it (`recovery`) and rebuilds tasks and executors
//! from agents re-registering (`reregistration`).

pub mod agents;
pub mod allocator;
pub mod endpoints;
pub mod flags;
pub mod frameworks;
mod http;
mod launch;
pub mod master;
pub mod metrics;
mod offers;
mod recovery;
mod registrar;
pub mod registry;
mod reregistration;
pub mod scheduler_api;
mod status_updates;
mod validation;

pub use flags::Flags;
pub use http::HttpError;
pub use master::{start, start_with_store, Master, MasterError, MasterHandle, MESOS_VERSION};
