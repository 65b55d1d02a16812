//! Helpers of the multi-host tests: the cluster's processes, a framework
//! built on the scheduler SDK, and a small HTTP client.

pub mod cluster;
pub mod framework;
pub mod http;
