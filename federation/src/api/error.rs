//! API errors and the one place they become HTTP responses:
//! `{"error":{"code":"...","message":"...","field":"..."}}` with the right status.

use crate::command::Rejection;
use crate::model::FieldError;
use crate::node::NodeError;
use crate::wire::{ErrorBody, ErrorDetail};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

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
    /// A 400 naming `field`.
    pub fn bad_field(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_string()),
            ..Self::bad_request(message)
        }
    }
    /// The applied state could not be read (its lock was poisoned by a panic).
    pub fn state_unreadable() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "state lock poisoned",
        )
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
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                field: self.field,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// The error answers as OpenAPI responses, one type per status, so each handler lists the ones it
/// can give: `responses((status = 200, ...), BadRequest, Unauthorized)`.
pub mod responses {
    use crate::wire::ErrorBody;

    /// Invalid body or parameter; `error.field` names it
    #[derive(utoipa::IntoResponses)]
    #[response(status = 400)]
    pub struct BadRequest(pub ErrorBody);

    /// Missing or wrong admin token
    #[derive(utoipa::IntoResponses)]
    #[response(status = 401)]
    pub struct Unauthorized(pub ErrorBody);

    /// Forbidden
    #[derive(utoipa::IntoResponses)]
    #[response(status = 403)]
    pub struct Forbidden(pub ErrorBody);

    /// Not found
    #[derive(utoipa::IntoResponses)]
    #[response(status = 404)]
    pub struct NotFound(pub ErrorBody);

    /// Already exists, or refused
    #[derive(utoipa::IntoResponses)]
    #[response(status = 409)]
    pub struct Conflict(pub ErrorBody);

    /// Too many attempts from this address: wait and try again
    #[derive(utoipa::IntoResponses)]
    #[response(status = 429)]
    pub struct TooManyRequests(pub ErrorBody);

    /// No quorum within the write timeout (no_quorum), or outcome unknown
    #[derive(utoipa::IntoResponses)]
    #[response(status = 503)]
    pub struct Unavailable(pub ErrorBody);
}
