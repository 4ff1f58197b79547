//! A small client of the REST API, used by the CLI and tests.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// TLS could not be set up for an https API.
    #[error("tls: {0}")]
    Tls(String),
    /// The server answered with an error status; `code` and `message` come from its JSON body.
    #[error("HTTP {status} {code}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
}

/// Talks to one federation node.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl ApiClient {
    /// `base` is like `http://127.0.0.1:7700`.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        Self::with_ca(base, token, None)
    }

    /// Like [`ApiClient::new`]; an `https://` base is verified against `ca_bundle_pem` (the
    /// federation's CA): the server must hold a SPIFFE identity of that CA's trust domain.
    pub fn with_ca(
        base: &str,
        token: Option<String>,
        ca_bundle_pem: Option<&str>,
    ) -> Result<Self, ClientError> {
        let tls = match (base.starts_with("https://"), ca_bundle_pem) {
            (false, _) => None,
            (true, Some(pem)) => Some(
                crate::trust::tls::anonymous_client_config(pem)
                    .map_err(|e| ClientError::Tls(e.to_string()))?,
            ),
            (true, None) => {
                return Err(ClientError::Tls(format!(
                    "{base} is https: give the federation's CA bundle (--api-ca-bundle or WARDEN_API_CA_BUNDLE)"
                )));
            }
        };
        Self::with_tls(base, token, tls)
    }

    /// Like [`ApiClient::new`] with an explicit TLS configuration (e.g. a join token's pin).
    pub fn with_tls(
        base: &str,
        token: Option<String>,
        tls: Option<rustls::ClientConfig>,
    ) -> Result<Self, ClientError> {
        crate::trust::ensure_crypto_provider();
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(cfg) = tls {
            builder = builder.use_preconfigured_tls(cfg);
        }
        let http = builder.build().map_err(|source| ClientError::Transport {
            url: base.to_string(),
            source,
        })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder, url: &str) -> Result<Value, ClientError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.map_err(|source| ClientError::Transport {
            url: url.to_string(),
            source,
        })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.to_string(),
                source,
            })?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if status.is_success() {
            return Ok(body);
        }
        let err = &body["error"];
        Err(ClientError::Api {
            status: status.as_u16(),
            code: err["code"].as_str().unwrap_or("unknown").to_string(),
            message: err["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| body.to_string()),
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(&url), &url).await
    }

    pub async fn post<B: Serialize>(&self, path: &str, body: &B) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.post(&url).json(body), &url).await
    }

    pub async fn put<B: Serialize>(&self, path: &str, body: &B) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.put(&url).json(body), &url).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.delete(&url), &url).await
    }
}
