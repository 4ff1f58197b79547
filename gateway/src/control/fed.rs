//! The gateway's client of the federation API: tries each configured node until one answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde_json::Value;
use warden_federation::client::{ApiClient, ClientError};

/// API clients for every configured federation node.
#[derive(Clone)]
pub struct FedClient {
    nodes: Arc<Vec<(String, ApiClient)>>,
    /// Index of the node that answered last; tried first.
    preferred: Arc<AtomicUsize>,
}

impl FedClient {
    pub fn new(
        endpoints: &[String],
        token: Option<String>,
        ca_bundle_pem: Option<&str>,
    ) -> Result<Self, ClientError> {
        let nodes = endpoints
            .iter()
            .map(|e| {
                Ok((
                    e.clone(),
                    ApiClient::with_ca(e, token.clone(), ca_bundle_pem)?,
                ))
            })
            .collect::<Result<Vec<_>, ClientError>>()?;
        Ok(Self {
            nodes: Arc::new(nodes),
            preferred: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Base URLs in the order to try them.
    pub fn order(&self) -> Vec<(usize, String)> {
        let n = self.nodes.len();
        let p = self.preferred.load(Ordering::Relaxed) % n.max(1);
        (0..n)
            .map(|i| (p + i) % n)
            .map(|i| (i, self.nodes[i].0.clone()))
            .collect()
    }

    pub fn prefer(&self, i: usize) {
        self.preferred.store(i, Ordering::Relaxed);
    }

    async fn each<F, Fut>(&self, f: F) -> Result<Value, ClientError>
    where
        F: Fn(ApiClient) -> Fut,
        Fut: std::future::Future<Output = Result<Value, ClientError>>,
    {
        let mut last = None;
        for (i, _) in self.order() {
            match f(self.nodes[i].1.clone()).await {
                Ok(v) => {
                    self.prefer(i);
                    return Ok(v);
                }
                // An answer from the API (4xx) is final; transport errors and 503 try the next.
                Err(ClientError::Api {
                    status,
                    code,
                    message,
                }) if status != 503 => {
                    return Err(ClientError::Api {
                        status,
                        code,
                        message,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ClientError::Api {
            status: 503,
            code: "no_endpoints".into(),
            message: "no federation endpoint configured".into(),
        }))
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.each(|c| {
            let p = path.to_string();
            async move { c.get(&p).await }
        })
        .await
    }

    pub async fn put<B: Serialize + Sync>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Value, ClientError> {
        self.each(|c| async move { c.put(path, body).await }).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.each(|c| {
            let p = path.to_string();
            async move { c.delete(&p).await }
        })
        .await
    }

    pub async fn post<B: Serialize + Sync>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Value, ClientError> {
        self.each(|c| async move { c.post(path, body).await }).await
    }
}
