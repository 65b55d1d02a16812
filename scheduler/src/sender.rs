//! The call sender: one task posting queued calls to the master in order.
//!
//! Seed step 5 (the driver sends `ACCEPT` with `LAUNCH`) is marked here.

use std::sync::Arc;

use mesos_proto::v1::scheduler::{call, Call};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use crate::driver::{
    call_type_name, join_ids, launched_task_ids, CallFailure, CallFailureReason, SchedulerDriver,
};
use crate::master_client::MasterClient;
use crate::TIMELINE_TARGET;

/// What the driver handle queues for the sender.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A call with its framework id set.
    Call(Box<Call>),
    /// Send `TEARDOWN` unless `failover`, then end the session.
    Stop {
        /// Keep the framework registered for a successor.
        failover: bool,
    },
}

/// Posts calls until `Stop` (or until the driver goes away). Failures go to
/// the session as `CallFailure`s so that `call_failed` runs on the callback
/// task like every other callback.
pub(crate) async fn run(
    driver: SchedulerDriver,
    client: Arc<MasterClient>,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    failures: mpsc::UnboundedSender<CallFailure>,
) {
    while let Some(item) = outgoing.recv().await {
        match item {
            Outgoing::Call(call) => {
                if let Err(failure) = send(&driver, &client, *call).await {
                    tracing::warn!(error = %failure, "scheduler call failed");
                    let _ = failures.send(failure);
                }
            }
            Outgoing::Stop { failover } => {
                if !failover {
                    teardown(&driver, &client).await;
                }
                driver.signal_stop();
                return;
            }
        }
    }
}

async fn send(
    driver: &SchedulerDriver,
    client: &MasterClient,
    call: Call,
) -> Result<(), CallFailure> {
    let Some(stream_id) = driver.stream_id() else {
        return Err(CallFailure {
            call,
            reason: CallFailureReason::NotConnected,
        });
    };
    let span = accept_span(&call);
    tracing::debug!(call = call_type_name(&call), "sending call");
    let result = client.send_call(&call, &stream_id).instrument(span).await;
    result.map_err(|e| CallFailure {
        call,
        reason: CallFailureReason::Http(e),
    })
}

/// The step-5 span of an `ACCEPT`, opened as its `POST` starts.
fn accept_span(call: &Call) -> tracing::Span {
    let Some(accept) = call.accept.as_ref() else {
        return tracing::Span::none();
    };
    tracing::info_span!(
        target: TIMELINE_TARGET,
        "ACCEPT sent",
        seed_step = 5u64,
        task_id = %launched_task_ids(&accept.operations).join(","),
        offer_id = %join_ids(accept.offer_ids.iter().map(|id| id.value.as_str())),
    )
}

async fn teardown(driver: &SchedulerDriver, client: &MasterClient) {
    let (Some(framework_id), Some(stream_id)) = (driver.framework_id(), driver.stream_id()) else {
        tracing::debug!("not subscribed; nothing to tear down");
        return;
    };
    let call = Call {
        framework_id: Some(framework_id),
        r#type: Some(call::Type::Teardown as i32),
        ..Default::default()
    };
    if let Err(e) = client.send_call(&call, &stream_id).await {
        tracing::warn!(error = %e, "TEARDOWN failed; the master removes the framework after its failover timeout");
    }
}
