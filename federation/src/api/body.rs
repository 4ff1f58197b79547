//! JSON request bodies that fail with a 400 naming the field, never a bare parse error.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// How long a request body may take to arrive (`limits.body_read_timeout_ms`; set on each
/// connection by the server, 30 s where it is not).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub std::time::Duration);

impl Default for BodyDeadline {
    fn default() -> Self {
        Self(std::time::Duration::from_secs(30))
    }
}

/// A JSON body decoded into `T`; errors name the offending field path.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // A body trickled in slowly would hold its connection: it must arrive in time.
        let BodyDeadline(deadline) = req
            .extensions()
            .get::<BodyDeadline>()
            .copied()
            .unwrap_or_default();
        let read = tokio::time::timeout(deadline, Bytes::from_request(req, state));
        let bytes = read
            .await
            .map_err(|_| {
                ApiError::new(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    format!("the body did not arrive within {deadline:?}"),
                )
            })?
            .map_err(|e| {
                ApiError::new(
                    e.status(),
                    "invalid_body",
                    format!("cannot read the body: {e}"),
                )
            })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Parses JSON, reporting the path of the first bad field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." {
            // serde reports a missing or unknown field at the parent; pull the name from the message.
            field_from_message(&inner.to_string())
        } else {
            Some(path)
        };
        ApiError {
            field,
            ..ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("invalid JSON body: {inner}"),
            )
        }
    })
}

fn field_from_message(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        name: String,
        ports: Vec<u16>,
    }

    #[test]
    fn errors_name_the_field() {
        let f = |s: &str| parse::<T>(s.as_bytes()).unwrap_err().field;
        assert_eq!(f(r#"{"ports":[]}"#).as_deref(), Some("name"));
        assert_eq!(f(r#"{"name":1,"ports":[]}"#).as_deref(), Some("name"));
        assert_eq!(
            f(r#"{"name":"a","ports":[1,"x"]}"#).as_deref(),
            Some("ports[1]")
        );
        assert_eq!(
            f(r#"{"name":"a","ports":[],"extra":1}"#).as_deref(),
            Some("extra")
        );
        assert!(parse::<T>(b"{not json").is_err());
    }
}
