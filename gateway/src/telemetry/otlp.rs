//! OTLP/HTTP span export (protobuf, `POST {endpoint}/v1/traces`, the OpenTelemetry
//! collector's default receiver). The data path hands finished spans to a bounded queue with
//! `try_send`: a full queue drops the span and counts it (`warden_otlp_spans_total{outcome=
//! "dropped_queue_full"}`), it never waits. One task drains the queue into batches of at most
//! `max_batch` spans, or what came within `flush_ms`, and sends each with a timeout; a failed
//! export drops its batch (counted) rather than holding spans in memory for a retry.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use prost::Message;
use tokio::sync::mpsc;

use super::span::RequestSpan;
use crate::config::OtlpSection;
use crate::metrics::Metrics;

/// The sending side, held by the data path.
pub struct Exporter {
    tx: mpsc::Sender<Arc<RequestSpan>>,
    metrics: Arc<Metrics>,
}

impl Exporter {
    /// Spawns the export task on the current Tokio runtime.
    pub fn start(
        cfg: &OtlpSection,
        cluster: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        let url = format!("{}/v1/traces", cfg.endpoint.trim_end_matches('/'));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .no_proxy()
            .build()?;
        let (tx, rx) = mpsc::channel(cfg.queue);
        let task = Task {
            rx,
            client,
            url,
            resource: resource(cluster),
            max_batch: cfg.max_batch,
            flush: Duration::from_millis(cfg.flush_ms),
            metrics: metrics.clone(),
        };
        tokio::spawn(task.run());
        Ok(Self { tx, metrics })
    }

    /// Queues a span; drops (and counts) it when the queue is full.
    pub fn send(&self, span: Arc<RequestSpan>) {
        if self.tx.try_send(span).is_err() {
            self.metrics
                .otlp_spans
                .with_label_values(&["dropped_queue_full"])
                .inc();
        }
    }
}

struct Task {
    rx: mpsc::Receiver<Arc<RequestSpan>>,
    client: reqwest::Client,
    url: String,
    resource: Resource,
    max_batch: usize,
    flush: Duration,
    metrics: Arc<Metrics>,
}

impl Task {
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.max_batch);
        loop {
            // Wait for a first span, then gather until the batch is full or the flush time.
            if self.rx.recv_many(&mut batch, self.max_batch).await == 0 {
                return;
            }
            let deadline = tokio::time::Instant::now() + self.flush;
            while batch.len() < self.max_batch {
                let room = self.max_batch - batch.len();
                match tokio::time::timeout_at(deadline, self.rx.recv_many(&mut batch, room)).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            self.export(&batch).await;
            batch.clear();
        }
    }

    async fn export(&self, batch: &[Arc<RequestSpan>]) {
        let body = encode(&self.resource, batch);
        let sent = self
            .client
            .post(&self.url)
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await;
        let n = batch.len() as u64;
        let outcome = match sent {
            Ok(r) if r.status().is_success() => "exported",
            Ok(r) => {
                tracing::warn!(
                    status = r.status().as_u16(),
                    spans = n,
                    "OTLP collector refused a batch of spans; dropped"
                );
                "dropped_export_failed"
            }
            Err(e) => {
                tracing::warn!(error = %e, spans = n, "cannot export spans to the OTLP collector; dropped");
                "dropped_export_failed"
            }
        };
        self.metrics
            .otlp_spans
            .with_label_values(&[outcome])
            .inc_by(n);
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
    }
}

fn text(key: &str, v: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.to_string()))
}

/// Who sends: the service name collectors group by, and the cluster.
fn resource(cluster: &str) -> Resource {
    Resource {
        attributes: vec![
            text("service.name", "warden-gateway"),
            text("warden.cluster", cluster),
        ],
        ..Default::default()
    }
}

/// One request as an OTLP server span, with the HTTP semantic-convention attributes.
pub fn to_span(s: &RequestSpan) -> Span {
    let (start, end) = s.times_unix_nanos();
    let mut attributes = vec![
        text("http.request.method", s.method.as_str()),
        text("url.path", &s.path),
        kv(
            "http.response.status_code",
            any_value::Value::IntValue(i64::from(s.status)),
        ),
        text("warden.listener", s.listener),
        text("warden.service", &s.service),
        text("warden.src_cluster", &s.src_cluster),
        text("warden.dst_cluster", &s.dst_cluster),
        kv(
            "warden.retries",
            any_value::Value::IntValue(i64::from(s.retries)),
        ),
    ];
    if let Some(e) = &s.endpoint {
        attributes.push(text("warden.endpoint", e));
    }
    if let Some(e) = s.error {
        attributes.push(text("error.type", e));
    }
    let status = if s.failed() {
        Status {
            code: status::StatusCode::Error as i32,
            message: s.error.unwrap_or("").to_string(),
        }
    } else {
        Status::default()
    };
    Span {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        parent_span_id: s.parent_id.map(|p| p.to_vec()).unwrap_or_default(),
        name: format!("{} {}", s.method, s.service),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        status: Some(status),
        ..Default::default()
    }
}

/// The export request for `batch`, protobuf-encoded.
pub fn encode(resource: &Resource, batch: &[Arc<RequestSpan>]) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "warden-gateway".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans: batch.iter().map(|s| to_span(s)).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}
