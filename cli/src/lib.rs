//! Command-line tools: `mesos-execute` (see [`execute`]) and `mesos-local`
//! (see [`local`]), and the [`cluster`] of child processes they and
//! `mesos-bench` start on loopback.

#![warn(missing_docs)]

pub mod cluster;
pub mod execute;
pub mod local;
