//! API errors and the one place they become HTTP responses:
//! `{"error":{"code":"...","message":"...","field":"..."}}` with the right status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::command::Rejection;
use crate::model::FieldError;
use crate::node::NodeError;

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, for 400s.
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_field",
            message: e.to_string(),
            field: Some(e.field),
        }
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::NoQuorum(_) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "no_quorum", e.to_string())
            }
            NodeError::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            NodeError::Refused(_) => Self::new(StatusCode::CONFLICT, "refused", e.to_string()),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::AlreadyExists(what) => Self::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("{what} already exists"),
            ),
            Rejection::NotFound(what) => Self::not_found(format!("{what} not found")),
            Rejection::JoinTokenRejected(why) => {
                Self::new(StatusCode::FORBIDDEN, "join_token_rejected", why)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut err = json!({ "code": self.code, "message": self.message });
        if let (Some(field), Some(obj)) = (self.field, err.as_object_mut()) {
            obj.insert("field".into(), json!(field));
        }
        (self.status, axum::Json(json!({ "error": err }))).into_response()
    }
}
