//! Scheduler SDK for the Mesos v1 scheduler HTTP API.
//!
//! Implement [`Scheduler`], hand it to a [`SchedulerDriver`] with a
//! [`DriverConfig`], and `run` it inside a tokio runtime:
//!
//! ```no_run
//! use mesos_proto::v1::{FrameworkInfo, Offer, TaskStatus};
//! use mesos_scheduler::{DriverConfig, Scheduler, SchedulerDriver};
//!
//! struct DeclineAll;
//!
//! impl Scheduler for DeclineAll {
//!     fn resource_offers(&mut self, driver: &SchedulerDriver, offers: Vec<Offer>) {
//!         for offer in offers {
//!             let _ = driver.decline_offer(offer.id, None);
//!         }
//!     }
//!
//!     fn status_update(&mut self, _driver: &SchedulerDriver, _status: TaskStatus) {}
//! }
//!
//! # async fn example() -> Result<(), mesos_scheduler::DriverError> {
//! let framework = FrameworkInfo {
//!     user: "root".into(),
//!     name: "decline-all".into(),
//!     ..Default::default()
//! };
//! let config = DriverConfig::new("127.0.0.1:5050", framework)?;
//! SchedulerDriver::new(DeclineAll, config).run().await
//! # }
//! ```
//!
//! # How it talks to the master
//!
//! * `SUBSCRIBE` is a `POST /api/v1/scheduler` whose response is a chunked
//!   RecordIO stream of events; the `Mesos-Stream-Id` it returns goes on every
//!   other call, each its own `POST` answered `202 Accepted`.
//! * `307 Temporary Redirect` (a master that is not the leader) is followed to
//!   the `Location`'s `host:port`, which then becomes the master for every
//!   later request; `503 Service Unavailable` (a recovering master) is retried.
//! * When the stream ends, breaks, or carries no event (not even a
//!   `HEARTBEAT`) for [`DriverConfig::heartbeat_misses`] heartbeat intervals,
//!   the driver calls [`Scheduler::disconnected`] and subscribes again with
//!   jittered exponential backoff, passing its framework id (failover).
//! * Updates carrying a `uuid` are acknowledged after
//!   [`Scheduler::status_update`] returns, unless implicit acknowledgements are
//!   turned off ([`DriverConfig::implicit_acknowledgements`]).
//!
//! Callbacks run one at a time, in event order, on the driver's task. Driver
//! calls made inside them (or from anywhere else: [`SchedulerDriver`] is
//! `Clone + Send + Sync`) are queued and sent in order by one sender task.
//!
//! # Seed-step tracing
//!
//! The driver marks three of the seed steps of task assignment
//! (`docs/architecture.md`) with tracing spans carrying a `seed_step` field,
//! the form `mesos-timeline` collects:
//!
//! | step | span name | ids |
//! |---|---|---|
//! | 3 | `resource_offers called` | `offer_id` (comma-separated) |
//! | 4 | `launch_tasks called` | `task_id`, `offer_id` |
//! | 5 | `ACCEPT sent` | `task_id`, `offer_id`; opened when the `POST` starts |
//!
//! All three use the target [`TIMELINE_TARGET`].

#![warn(missing_docs)]

mod backoff;
mod config;
mod dispatch;
mod driver;
mod endpoint;
mod event_stream;
mod master_client;
mod scheduler;
mod sender;
mod session;
#[cfg(feature = "fake-master")]
pub mod testing;

pub use config::DriverConfig;
pub use driver::{CallFailure, DriverError, DriverStatus, SchedulerDriver};
pub use endpoint::{EndpointError, MasterEndpoint};
pub use master_client::HttpError;
pub use mesos_proto::codec::ContentType;
pub use scheduler::Scheduler;

/// The tracing target of the seed-step spans (see the crate docs).
pub const TIMELINE_TARGET: &str = "mesos_timeline";
