//! Fault injection: which requests a policy delays or aborts. Shares are drawn per request in
//! parts per million; the `x-warden-fault` header, where a policy allows it, names the fault
//! for one request instead (`delay=<ms>`, `abort=<http status>`, `grpc=<status>`, comma
//! separated).

use std::time::Duration;

use http::HeaderValue;
use warden_federation::resilience::{FaultInjection, MAX_DELAY_MS};

/// An answer instead of forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abort {
    pub http: Option<u16>,
    pub grpc: Option<u8>,
}

/// What to do to one request.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Injected {
    pub delay: Option<Duration>,
    pub abort: Option<Abort>,
}

/// A compiled fault policy.
#[derive(Debug)]
pub struct Fault {
    delay: Option<(u32, Duration)>,
    abort: Option<(u32, Abort)>,
    sources: Vec<String>,
    header_trigger: bool,
}

/// A bad `x-warden-fault` header: what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFaultHeader(pub String);

/// A percentage in parts per million.
pub fn ppm(percent: f64) -> u32 {
    (percent * 10_000.0).round().clamp(0.0, 1_000_000.0) as u32
}

impl Fault {
    pub fn new(f: &FaultInjection) -> Self {
        Self {
            delay: f
                .delay
                .as_ref()
                .map(|d| (ppm(d.percent), Duration::from_millis(d.fixed_ms))),
            abort: f.abort.as_ref().map(|a| {
                (
                    ppm(a.percent),
                    Abort {
                        http: a.http_status,
                        grpc: a.grpc_status,
                    },
                )
            }),
            sources: f.source_clusters.clone(),
            header_trigger: f.header_trigger,
        }
    }

    /// The fault for a request from `source` carrying `header` (`x-warden-fault`); `draw`
    /// gives uniform numbers below 1,000,000.
    pub fn decide(
        &self,
        source: &str,
        header: Option<&HeaderValue>,
        mut draw: impl FnMut() -> u32,
    ) -> Result<Injected, BadFaultHeader> {
        if !self.sources.is_empty() && !self.sources.iter().any(|s| s == source) {
            return Ok(Injected::default());
        }
        if self.header_trigger
            && let Some(h) = header
        {
            return parse_header(h);
        }
        let mut out = Injected::default();
        if let Some((share, d)) = self.delay
            && draw() < share
        {
            out.delay = Some(d);
        }
        if let Some((share, a)) = self.abort
            && draw() < share
        {
            out.abort = Some(a);
        }
        Ok(out)
    }
}

fn parse_header(h: &HeaderValue) -> Result<Injected, BadFaultHeader> {
    let bad = |m: &str| BadFaultHeader(m.to_string());
    let s = h.to_str().map_err(|_| bad("not ASCII"))?;
    let mut out = Injected::default();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad("expected delay=<ms>, abort=<status> or grpc=<status>"))?;
        let n: u64 = v
            .trim()
            .parse()
            .map_err(|_| bad(&format!("{k}: not a number")))?;
        match k.trim() {
            "delay" if (1..=MAX_DELAY_MS).contains(&n) => {
                out.delay = Some(Duration::from_millis(n))
            }
            "delay" => return Err(bad(&format!("delay: 1-{MAX_DELAY_MS} ms"))),
            "abort" if (200..=599).contains(&n) => {
                let a = out.abort.get_or_insert(Abort {
                    http: None,
                    grpc: None,
                });
                a.http = Some(n as u16);
            }
            "abort" => return Err(bad("abort: an HTTP status 200-599")),
            "grpc" if (1..=16).contains(&n) => {
                let a = out.abort.get_or_insert(Abort {
                    http: None,
                    grpc: None,
                });
                a.grpc = Some(n as u8);
            }
            "grpc" => return Err(bad("grpc: a gRPC status 1-16")),
            other => return Err(bad(&format!("unknown fault {other:?}"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(v: serde_json::Value) -> Fault {
        Fault::new(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn shares_are_drawn_per_request_and_sources_filter() {
        let f = fault(serde_json::json!({
            "abort": {"percent": 10, "http_status": 503},
            "delay": {"percent": 50, "fixed_ms": 20},
            "source_clusters": ["west"]
        }));
        let mut n = 0u32;
        let mut draw = || {
            n = (n + 7_919) % 1_000_000;
            n
        };
        let (mut aborted, mut delayed) = (0, 0);
        for _ in 0..10_000 {
            let i = f.decide("west", None, &mut draw).unwrap();
            aborted += i.abort.is_some() as u32;
            delayed += i.delay.is_some() as u32;
        }
        assert!((900..=1100).contains(&aborted), "{aborted}");
        assert!((4800..=5200).contains(&delayed), "{delayed}");
        assert_eq!(f.decide("east", None, || 0).unwrap(), Injected::default());
    }

    #[test]
    fn the_header_counts_only_where_allowed_and_bad_ones_are_named() {
        let h = HeaderValue::from_static("delay=150, abort=503");
        let off = fault(serde_json::json!({"abort": {"percent": 0, "http_status": 500}}));
        assert_eq!(
            off.decide("a", Some(&h), || 999_999).unwrap(),
            Injected::default()
        );
        let on = fault(serde_json::json!({"header_trigger": true}));
        let i = on.decide("a", Some(&h), || 0).unwrap();
        assert_eq!(i.delay, Some(Duration::from_millis(150)));
        assert_eq!(
            i.abort,
            Some(Abort {
                http: Some(503),
                grpc: None
            })
        );
        let g = on
            .decide("a", Some(&HeaderValue::from_static("grpc=14")), || 0)
            .unwrap();
        assert_eq!(
            g.abort,
            Some(Abort {
                http: None,
                grpc: Some(14)
            })
        );
        for bad in [
            "delay", "abort=99", "delay=0", "grpc=40", "boom=1", "delay=x",
        ] {
            assert!(
                on.decide("a", Some(&HeaderValue::from_static(bad)), || 0)
                    .is_err(),
                "{bad}"
            );
        }
    }
}
