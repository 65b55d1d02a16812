//! Seed steps 2 and 5: `POST /api/v1/scheduler` (src/master/http.cpp
//! `Master::Http::scheduler`).
//!
//! The HTTP layer checks what Mesos checks before the call reaches the
//! master, in Mesos's order and with its messages: recovery (503 until the
//! registry is recovered), method (405),
//! `Content-Type` (400/415), body (400), call validation (400), `Accept`
//! for SUBSCRIBE (406), the stream id rules. SUBSCRIBE answers `200` with a
//! chunked RecordIO stream whose first record is SUBSCRIBED (or ERROR);
//! every other call answers `202` once the master task accepted it.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream;
use mesos_proto::codec::{self, CodecError, ContentType};
use mesos_proto::v1::scheduler::{call, Call};
use tokio::sync::{mpsc, oneshot};

use crate::http::{AppState, HttpError};
use crate::master::{Command, Master};

/// The stream id header.
pub const STREAM_ID: &str = "Mesos-Stream-Id";

/// The route handler.
pub(crate) async fn handle(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle_request(&state, &method, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn handle_request(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, HttpError> {
    if !state.is_recovered() {
        return Err(HttpError::recovering());
    }
    if method != Method::POST {
        let message = format!("Expecting one of {{ 'POST' }}, but received '{method}'");
        let mut response = (StatusCode::METHOD_NOT_ALLOWED, message).into_response();
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return Ok(response);
    }
    let content_type = request_content_type(headers)?;
    let call = parse_call(body, content_type).map_err(HttpError::bad_request)?;
    validate_call(&call)
        .map_err(|e| HttpError::bad_request(format!("Failed to validate scheduler::Call: {e}")))?;

    if call.r#type == Some(call::Type::Subscribe as i32) {
        let accept = response_content_type(headers)?;
        if headers.contains_key(STREAM_ID) {
            return Err(HttpError::bad_request(
                "Subscribe calls should not include the 'Mesos-Stream-Id' header",
            ));
        }
        return subscribe(state, call, accept).await;
    }

    let stream_id = headers
        .get(STREAM_ID)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let is_update_framework = call.r#type == Some(call::Type::UpdateFramework as i32);
    let (reply, answer) = oneshot::channel();
    let command = Command::Call {
        call: Box::new(call),
        stream_id,
        reply,
    };
    state
        .commands
        .send(command)
        .map_err(|_| HttpError::unavailable())?;
    answer.await.map_err(|_| HttpError::unavailable())??;
    // UPDATE_FRAMEWORK is synchronous in Mesos: 200 once applied.
    let status = if is_update_framework {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(status.into_response())
}

async fn subscribe(
    state: &AppState,
    call: Call,
    accept: ContentType,
) -> Result<Response, HttpError> {
    let (reply, answer) = oneshot::channel();
    let command = Command::Subscribe {
        call: Box::new(call),
        content_type: accept,
        reply,
    };
    state
        .commands
        .send(command)
        .map_err(|_| HttpError::unavailable())?;
    let subscription = answer.await.map_err(|_| HttpError::unavailable())?;
    let guard = StreamGuard {
        commands: state.commands.clone(),
        framework_id: subscription.framework_id.clone(),
        stream_id: subscription.stream_id.clone(),
    };
    let body = Body::from_stream(event_stream(subscription.events, guard));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(accept.mime()));
    if let Ok(value) = HeaderValue::from_str(&subscription.stream_id) {
        headers.insert(STREAM_ID, value);
    }
    Ok(response)
}

/// The records of one subscription; ends when the master drops the sender
/// (framework removed, failed over or rejected). Dropping it (the client
/// went away) tells the master through the guard.
fn event_stream(
    events: mpsc::UnboundedReceiver<Bytes>,
    guard: StreamGuard,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send {
    stream::unfold((events, guard), |(mut events, guard)| async move {
        let record = events.recv().await?;
        Some((Ok(record), (events, guard)))
    })
}

/// Reports the end of a subscriber's HTTP stream to the master.
struct StreamGuard {
    commands: mpsc::UnboundedSender<Command>,
    framework_id: Option<String>,
    stream_id: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if let Some(framework_id) = self.framework_id.take() {
            let _ = self.commands.send(Command::StreamClosed {
                framework_id,
                stream_id: std::mem::take(&mut self.stream_id),
            });
        }
    }
}

fn request_content_type(headers: &HeaderMap) -> Result<ContentType, HttpError> {
    let value = headers
        .get(CONTENT_TYPE)
        .ok_or_else(|| HttpError::bad_request("Expecting 'Content-Type' to be present"))?;
    value
        .to_str()
        .ok()
        .and_then(ContentType::from_mime)
        .ok_or_else(|| HttpError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!(
                "Expecting 'Content-Type' of {} or {}",
                ContentType::JSON_MIME,
                ContentType::PROTOBUF_MIME
            ),
        })
}

/// The SUBSCRIBE stream's encoding from `Accept` (absent: JSON, as libprocess
/// treats a missing header as accepting anything).
fn response_content_type(headers: &HeaderMap) -> Result<ContentType, HttpError> {
    let Some(value) = headers.get(ACCEPT) else {
        return Ok(ContentType::Json);
    };
    value
        .to_str()
        .ok()
        .and_then(ContentType::from_accept)
        .ok_or_else(|| HttpError {
            status: StatusCode::NOT_ACCEPTABLE,
            message: format!(
                "Expecting 'Accept' to allow '{}' or '{}'",
                ContentType::PROTOBUF_MIME,
                ContentType::JSON_MIME
            ),
        })
}

/// Decodes the body with Mesos's error messages.
pub(crate) fn parse_call(body: &[u8], content_type: ContentType) -> Result<Call, String> {
    match content_type {
        ContentType::Protobuf => codec::from_protobuf(body)
            .map_err(|_| "Failed to parse body into Call protobuf".to_string()),
        ContentType::Json => codec::from_json(body).map_err(|error| match error {
            CodecError::Syntax(_) => error.to_string(),
            CodecError::MissingRequired(_) => {
                format!("Failed to convert JSON into Call protobuf: {error}")
            }
            CodecError::Schema { path, reason, .. } => {
                format!("Failed to convert JSON into Call protobuf: {path}: {reason}")
            }
            CodecError::Protobuf { .. } => error.to_string(),
        }),
    }
}

/// Mesos's `validation::scheduler::call::validate`: the payload matching the
/// type is present, non-SUBSCRIBE calls name their framework.
pub(crate) fn validate_call(call: &Call) -> Result<(), String> {
    let Some(kind) = call.r#type.and_then(|t| call::Type::try_from(t).ok()) else {
        return Err("Expecting 'type' to be present".to_string());
    };
    if kind == call::Type::Subscribe {
        let subscribe = call
            .subscribe
            .as_ref()
            .ok_or("Expecting 'subscribe' to be present")?;
        if subscribe.framework_info.id != call.framework_id {
            return Err("'framework_id' differs from 'subscribe.framework_info.id'".to_string());
        }
        return Ok(());
    }
    if call.framework_id.is_none() {
        return Err("Expecting 'framework_id' to be present".to_string());
    }
    let present = |present: bool, name: &str| {
        if present {
            Ok(())
        } else {
            Err(format!("Expecting '{name}' to be present"))
        }
    };
    use call::Type as T;
    match kind {
        T::Accept => present(call.accept.is_some(), "accept"),
        T::Decline => present(call.decline.is_some(), "decline"),
        T::AcceptInverseOffers => present(
            call.accept_inverse_offers.is_some(),
            "accept_inverse_offers",
        ),
        T::DeclineInverseOffers => present(
            call.decline_inverse_offers.is_some(),
            "decline_inverse_offers",
        ),
        T::Kill => present(call.kill.is_some(), "kill"),
        T::Shutdown => present(call.shutdown.is_some(), "shutdown"),
        T::Acknowledge => {
            let ack = call
                .acknowledge
                .as_ref()
                .ok_or("Expecting 'acknowledge' to be present")?;
            if ack.uuid.len() != 16 {
                return Err("Not a valid UUID".to_string());
            }
            Ok(())
        }
        T::AcknowledgeOperationStatus => present(
            call.acknowledge_operation_status.is_some(),
            "acknowledge_operation_status",
        ),
        T::Reconcile => present(call.reconcile.is_some(), "reconcile"),
        T::ReconcileOperations => {
            present(call.reconcile_operations.is_some(), "reconcile_operations")
        }
        T::Message => present(call.message.is_some(), "message"),
        T::Request => present(call.request.is_some(), "request"),
        T::UpdateFramework => present(call.update_framework.is_some(), "update_framework"),
        T::Teardown | T::Revive | T::Suppress | T::Unknown | T::Subscribe => Ok(()),
    }
}

impl Master {
    /// Handles a non-SUBSCRIBE call: the framework and stream checks of
    /// `Master::Http::scheduler`, then the call.
    pub(crate) fn handle_call(
        &mut self,
        call: Call,
        stream_id: Option<String>,
    ) -> Result<(), HttpError> {
        let framework_id = call
            .framework_id
            .as_ref()
            .map(|id| id.value.clone())
            .unwrap_or_default();
        let framework = self
            .frameworks
            .get(&framework_id)
            .ok_or_else(|| HttpError::bad_request("Framework cannot be found"))?;
        let Some(connection) = &framework.connection else {
            return Err(HttpError::forbidden("Framework is not subscribed"));
        };
        let stream_id = stream_id.ok_or_else(|| {
            HttpError::bad_request(
                "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
            )
        })?;
        if stream_id != connection.stream_id {
            return Err(HttpError::bad_request(format!(
                "The stream ID '{stream_id}' included in this request didn't match the stream \
                 ID currently associated with framework ID {framework_id}"
            )));
        }
        self.metrics.count_call(call.r#type);
        use call::Type as T;
        let kind = call.r#type.and_then(|t| T::try_from(t).ok());
        match kind {
            Some(T::Teardown) => self.teardown(&framework_id),
            Some(T::Accept) => self.accept(&framework_id, call.accept.unwrap_or_default()),
            Some(T::Decline) => self.decline(&framework_id, call.decline.unwrap_or_default()),
            Some(T::Revive) => self.revive(&framework_id, call.revive.unwrap_or_default().roles),
            Some(T::Suppress) => {
                self.suppress(&framework_id, call.suppress.unwrap_or_default().roles)
            }
            Some(T::Kill) => self.kill(&framework_id, call.kill.unwrap_or_default()),
            Some(T::Shutdown) => {
                self.shutdown_executor(&framework_id, call.shutdown.unwrap_or_default())
            }
            Some(T::Acknowledge) => {
                self.acknowledge(&framework_id, call.acknowledge.unwrap_or_default())
            }
            Some(T::Reconcile) => self.reconcile(&framework_id, call.reconcile.unwrap_or_default()),
            Some(T::Message) => {
                self.framework_message(&framework_id, call.message.unwrap_or_default())
            }
            Some(T::UpdateFramework) => {
                return self
                    .update_framework(&framework_id, call.update_framework.unwrap_or_default())
            }
            // No inverse offers or operations are ever made, and REQUEST is
            // a no-op in Mesos's allocator too.
            Some(
                T::Request
                | T::AcceptInverseOffers
                | T::DeclineInverseOffers
                | T::AcknowledgeOperationStatus
                | T::ReconcileOperations,
            ) => {}
            Some(T::Subscribe) | Some(T::Unknown) | None => {
                return Err(HttpError {
                    status: StatusCode::NOT_IMPLEMENTED,
                    message: String::new(),
                })
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_validation_messages() {
        let json = |s: &str| parse_call(s.as_bytes(), ContentType::Json);
        assert_eq!(
            validate_call(&json(r#"{}"#).unwrap()).unwrap_err(),
            "Expecting 'type' to be present"
        );
        assert_eq!(
            validate_call(&json(r#"{"type":"SUBSCRIBE"}"#).unwrap()).unwrap_err(),
            "Expecting 'subscribe' to be present"
        );
        assert_eq!(
            validate_call(&json(r#"{"type":"DECLINE"}"#).unwrap()).unwrap_err(),
            "Expecting 'framework_id' to be present"
        );
        assert_eq!(
            validate_call(&json(r#"{"type":"DECLINE","framework_id":{"value":"f"}}"#).unwrap())
                .unwrap_err(),
            "Expecting 'decline' to be present"
        );
        let ack = r#"{"type":"ACKNOWLEDGE","framework_id":{"value":"f"},
            "acknowledge":{"agent_id":{"value":"a"},"task_id":{"value":"t"},"uuid":"AAAA"}}"#;
        assert_eq!(
            validate_call(&json(ack).unwrap()).unwrap_err(),
            "Not a valid UUID"
        );
        let sub = r#"{"type":"SUBSCRIBE","framework_id":{"value":"x"},
            "subscribe":{"framework_info":{"user":"u","name":"n"}}}"#;
        assert_eq!(
            validate_call(&json(sub).unwrap()).unwrap_err(),
            "'framework_id' differs from 'subscribe.framework_info.id'"
        );
    }

    #[test]
    fn parse_errors_follow_mesos_wording() {
        let err = parse_call(b"{", ContentType::Json).unwrap_err();
        assert!(err.starts_with("Failed to parse body into JSON"), "{err}");
        let err = parse_call(
            br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"n"}}}"#,
            ContentType::Json,
        )
        .unwrap_err();
        assert!(
            err.starts_with("Failed to convert JSON into Call protobuf: Missing required fields:")
                && err.contains("user"),
            "{err}"
        );
        let err = parse_call(b"\xff\xff", ContentType::Protobuf).unwrap_err();
        assert_eq!(err, "Failed to parse body into Call protobuf");
    }
}
