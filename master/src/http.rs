//! The master's HTTP server: the routes of the libprocess `master` process
//! (and the `/version`, `/metrics` and `/health` ones libprocess serves from
//! other processes), with Mesos's delegation of un-prefixed paths to
//! `master` (`/state` = `/master/state`, `/api/v1/scheduler` =
//! `/master/api/v1/scheduler`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use mesos_transport::Upid;
use tokio::sync::mpsc;

use crate::endpoints;
use crate::master::Command;
use crate::scheduler_api;

/// Shared state of the HTTP handlers: the master's mailbox.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub commands: mpsc::UnboundedSender<Command>,
    pub upid: Upid,
    /// Set by the master task once the registry is recovered.
    pub recovered: Arc<AtomicBool>,
}

impl AppState {
    /// Whether the master finished recovering the registry.
    pub fn is_recovered(&self) -> bool {
        self.recovered.load(Ordering::Acquire)
    }
}

/// An HTTP error response with Mesos's status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The status code.
    pub status: StatusCode,
    /// The plain-text body.
    pub message: String,
}

impl HttpError {
    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        HttpError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        HttpError {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }

    /// 503 Service Unavailable (the master is shutting down).
    pub fn unavailable() -> Self {
        HttpError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "Master is not available".to_string(),
        }
    }

    /// 503 while the registry is being recovered, Mesos's exact answer.
    pub fn recovering() -> Self {
        HttpError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "Master has not finished recovery".to_string(),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.status, self.message).into_response()
    }
}

/// All routes of the master.
pub(crate) fn router(
    commands: mpsc::UnboundedSender<Command>,
    upid: Upid,
    recovered: Arc<AtomicBool>,
) -> Router {
    let state = AppState {
        commands: commands.clone(),
        upid,
        recovered,
    };
    let messages = mesos_transport::routes("master", move |message| {
        let _ = commands.send(Command::Message(message));
    });
    Router::new()
        .route("/api/v1/scheduler", any(scheduler_api::handle))
        .route("/master/api/v1/scheduler", any(scheduler_api::handle))
        .route("/version", get(endpoints::version))
        .route("/health", get(endpoints::health))
        .route("/master/health", get(endpoints::health))
        .route("/state", get(endpoints::state))
        .route("/state.json", get(endpoints::state))
        .route("/master/state", get(endpoints::state))
        .route("/master/state.json", get(endpoints::state))
        .route("/flags", get(endpoints::flags))
        .route("/master/flags", get(endpoints::flags))
        .route("/metrics/snapshot", get(endpoints::metrics))
        .route("/timeline", get(endpoints::timeline))
        .route("/master/timeline", get(endpoints::timeline))
        .route("/master/redirect", any(endpoints::redirect))
        .route("/master/redirect/{*rest}", any(endpoints::redirect))
        .with_state(state)
        .merge(messages)
}
