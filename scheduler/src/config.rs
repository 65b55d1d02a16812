//! How a driver connects: master, framework, encoding, timeouts.

use std::time::Duration;

use mesos_proto::codec::ContentType;
use mesos_proto::v1::FrameworkInfo;

use crate::endpoint::{EndpointError, MasterEndpoint};

/// Mesos's `DEFAULT_HEARTBEAT_INTERVAL`, assumed until `SUBSCRIBED` says
/// otherwise.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// Settings of a [`crate::SchedulerDriver`]. Build one with
/// [`DriverConfig::new`] and adjust it with the builder methods.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub(crate) master: MasterEndpoint,
    pub(crate) framework: FrameworkInfo,
    pub(crate) content_type: ContentType,
    pub(crate) implicit_acknowledgements: bool,
    pub(crate) heartbeat_misses: u32,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) give_up_after: Option<Duration>,
    pub(crate) request_timeout: Duration,
    pub(crate) max_redirects: u32,
    pub(crate) call_retries: u32,
}

impl DriverConfig {
    /// A driver for `master` (`host:port`, `http://host:port` or a bare host,
    /// which means port 5050) registering `framework`. A framework id already
    /// set in `framework.id` is used to fail over an earlier instance.
    pub fn new(master: &str, framework: FrameworkInfo) -> Result<Self, EndpointError> {
        Ok(Self {
            master: MasterEndpoint::parse(master)?,
            framework,
            content_type: ContentType::Json,
            implicit_acknowledgements: true,
            heartbeat_misses: 3,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(15),
            give_up_after: None,
            request_timeout: Duration::from_secs(10),
            max_redirects: 5,
            call_retries: 5,
        })
    }

    /// Body encoding of calls and events (default JSON).
    pub fn content_type(mut self, content_type: ContentType) -> Self {
        self.content_type = content_type;
        self
    }

    /// Whether the driver acknowledges updates itself after
    /// [`crate::Scheduler::status_update`] returns (default `true`). Turn off
    /// to acknowledge with [`crate::SchedulerDriver::acknowledge_status_update`],
    /// e.g. only after persisting the new state.
    pub fn implicit_acknowledgements(mut self, enabled: bool) -> Self {
        self.implicit_acknowledgements = enabled;
        self
    }

    /// How many heartbeat intervals without any event make the driver give up
    /// on the stream and reconnect (default 3, at least 1).
    pub fn heartbeat_misses(mut self, misses: u32) -> Self {
        self.heartbeat_misses = misses.max(1);
        self
    }

    /// Bounds of the jittered exponential backoff between subscription
    /// attempts (default 1 s doubling up to 15 s).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// Abort (calling [`crate::Scheduler::error`]) when no subscription
    /// succeeds for this long, counted from `start` or from the loss of the
    /// last connection. Default: never give up, as Mesos's drivers do.
    pub fn give_up_after(mut self, limit: Duration) -> Self {
        self.give_up_after = Some(limit);
        self
    }

    /// Time limit of each non-streaming request and of the wait for the
    /// `SUBSCRIBE` response headers (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How many `307` redirects one request follows (default 5).
    pub fn max_redirects(mut self, redirects: u32) -> Self {
        self.max_redirects = redirects;
        self
    }

    /// How many times a call answered `503` is retried (default 5).
    pub fn call_retries(mut self, retries: u32) -> Self {
        self.call_retries = retries;
        self
    }

    /// The master the driver starts with.
    pub fn master(&self) -> &MasterEndpoint {
        &self.master
    }

    /// The framework being registered.
    pub fn framework(&self) -> &FrameworkInfo {
        &self.framework
    }
}
