//! Why a call to the federation API failed, as a type a caller can match on: the API's error
//! codes become variants, so no caller parses a message.

use crate::wire::REVISION_COMPACTED;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request may not have reached any node (connection refused, timed out, reset).
    #[error("cannot reach {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// TLS could not be set up for an https API.
    #[error("tls: {0}")]
    Tls(String),
    /// No federation endpoint was configured.
    #[error("no federation endpoint configured")]
    NoEndpoints,
    /// The answer was not the JSON the API documents.
    #[error("{url}: unexpected answer: {source}")]
    Decode {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    /// 400: the request was refused; `field` names the part at fault.
    #[error("HTTP 400 {code}: {}{message}", .field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
    BadRequest {
        code: String,
        field: Option<String>,
        message: String,
    },
    /// 401: no or a wrong credential.
    #[error("HTTP 401 unauthorized: {message}")]
    Unauthorized { message: String },
    /// 403: the credential may not do this (e.g. a used join token).
    #[error("HTTP 403 {code}: {message}")]
    Forbidden { code: String, message: String },
    /// 404: no such thing.
    #[error("HTTP 404 not_found: {message}")]
    NotFound { message: String },
    /// 409: it exists already, or the change was refused.
    #[error("HTTP 409 {code}: {message}")]
    Conflict { code: String, message: String },
    /// 410 (or an error line mid-stream): the watch fell behind the retained history; list
    /// again and watch from the listed revision.
    #[error("revision compacted: {message}")]
    RevisionCompacted { message: String },
    /// 503: no quorum within the write timeout, or the outcome is unknown.
    #[error("HTTP 503 {code}: {message}")]
    Unavailable { code: String, message: String },
    /// Any other status.
    #[error("HTTP {status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// A watch stream ended or broke.
    #[error("watch stream from {url}: {message}")]
    WatchEnded { url: String, message: String },
}

impl ClientError {
    /// The error for an answer with `status` and the API's `{error: {code, message, field}}`.
    pub(crate) fn from_answer(
        status: u16,
        code: String,
        message: String,
        field: Option<String>,
    ) -> Self {
        match status {
            400 => Self::BadRequest {
                code,
                field,
                message,
            },
            401 => Self::Unauthorized { message },
            403 => Self::Forbidden { code, message },
            404 => Self::NotFound { message },
            409 => Self::Conflict { code, message },
            410 if code == REVISION_COMPACTED => Self::RevisionCompacted { message },
            503 => Self::Unavailable { code, message },
            _ => Self::Api {
                status,
                code,
                message,
            },
        }
    }

    /// The HTTP status the API answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        Some(match self {
            Self::BadRequest { .. } => 400,
            Self::Unauthorized { .. } => 401,
            Self::Forbidden { .. } => 403,
            Self::NotFound { .. } => 404,
            Self::Conflict { .. } => 409,
            Self::RevisionCompacted { .. } => 410,
            Self::Unavailable { .. } => 503,
            Self::Api { status, .. } => *status,
            _ => return None,
        })
    }

    /// Another node may answer where this one could not: transport failures and 503s.
    pub fn try_another_node(&self) -> bool {
        matches!(
            self,
            Self::Transport { .. } | Self::Unavailable { .. } | Self::WatchEnded { .. }
        )
    }

    /// The request certainly did not reach a node (so even a non-idempotent one may be sent
    /// again).
    pub fn never_sent(&self) -> bool {
        matches!(self, Self::Transport { source, .. } if source.is_connect())
    }
}
