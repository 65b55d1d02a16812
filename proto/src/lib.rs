//! The Mesos wire layer shared by the master, the agent and the SDKs.
//!
//! * [`v1`], [`v1::scheduler`], [`v1::executor`]: the public Mesos v1 protos,
//!   field-for-field equal to Apache Mesos 1.11.
//! * [`internal`]: master <-> agent messages and checkpoint records.
//! * [`codec`]: `application/x-protobuf` and `application/json` with Mesos's
//!   JSON conventions.
//! * [`recordio`]: the framing of the scheduler and executor event streams.

use std::sync::LazyLock;

use prost_reflect::DescriptorPool;

/// Descriptors of every message, used by the JSON codec.
pub static DESCRIPTOR_POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(include_bytes!(concat!(env!("OUT_DIR"), "/fds.bin")).as_ref())
        .expect("descriptor set produced by build.rs is valid")
});

/// Mesos v1 public API types (`mesos.v1`).
#[allow(deprecated, clippy::all, missing_docs, missing_debug_implementations)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.rs"));

    /// The v1 scheduler HTTP API (`mesos.v1.scheduler`).
    pub mod scheduler {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.scheduler.rs"));
    }

    /// The v1 executor HTTP API (`mesos.v1.executor`).
    pub mod executor {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.executor.rs"));
    }
}

/// Master <-> agent libprocess messages and agent checkpoint records
/// (`mesos.internal`).
#[allow(deprecated, clippy::all, missing_docs, missing_debug_implementations)]
pub mod internal {
    include!(concat!(env!("OUT_DIR"), "/mesos.internal.rs"));
}

pub mod codec;
pub mod duration;
pub mod recordio;
pub mod resources;
mod task_state;
