//! W3C Trace Context (`traceparent`) across gateway hops: each hop continues the caller's trace
//! (or starts one), takes a new span id, and sends `00-<trace id>-<its span id>-<flags>` on,
//! so the next hop — a remote gateway or the backend — sees this hop as its parent.
//! `tracestate` passes through untouched. Malformed headers start a new trace, as the
//! specification says.

use http::{HeaderMap, HeaderName, HeaderValue};

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// This hop's place in a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The caller's span, if the request carried a valid `traceparent`.
    pub parent_id: Option<[u8; 8]>,
    /// This hop's span.
    pub span_id: [u8; 8],
    pub flags: u8,
}

fn hex_into(s: &str, out: &mut [u8]) -> Option<()> {
    if s.len() != out.len() * 2
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses a `traceparent` value: (trace id, parent span id, flags). Version 00 must have
/// exactly four fields; later versions may append fields (forward compatibility).
pub fn parse(v: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    let mut parts = v.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let mut ver = [0u8; 1];
    hex_into(version, &mut ver)?;
    if ver[0] == 0xff || (ver[0] == 0 && parts.next().is_some()) {
        return None;
    }
    let (mut t, mut p, mut f) = ([0u8; 16], [0u8; 8], [0u8; 1]);
    hex_into(trace, &mut t)?;
    hex_into(parent, &mut p)?;
    hex_into(flags, &mut f)?;
    if t.iter().all(|x| *x == 0) || p.iter().all(|x| *x == 0) {
        return None;
    }
    Some((t, p, f[0]))
}

impl TraceContext {
    /// Continues the trace of `headers`, or starts a new (sampled) one.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let incoming = headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(parse);
        match incoming {
            // Ranges from 1: ids are never all zero (invalid per the specification).
            Some((trace_id, parent, flags)) => Self {
                trace_id,
                parent_id: Some(parent),
                span_id: fastrand::u64(1..).to_be_bytes(),
                flags,
            },
            None => Self {
                trace_id: fastrand::u128(1..).to_be_bytes(),
                parent_id: None,
                span_id: fastrand::u64(1..).to_be_bytes(),
                flags: 0x01,
            },
        }
    }

    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }

    pub fn parent_id_hex(&self) -> Option<String> {
        self.parent_id.map(|p| hex(&p))
    }

    /// The `traceparent` to send on: this hop is the parent of the next. Written without
    /// allocating a string: it is made on every request.
    pub fn header(&self) -> HeaderValue {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut v = [b'-'; 55];
        v[0] = b'0';
        v[1] = b'0';
        let mut put = |at: usize, bytes: &[u8]| {
            for (i, b) in bytes.iter().enumerate() {
                v[at + 2 * i] = HEX[(b >> 4) as usize];
                v[at + 2 * i + 1] = HEX[(b & 0xf) as usize];
            }
        };
        put(3, &self.trace_id);
        put(36, &self.span_id);
        put(53, &[self.flags]);
        // Only hex digits and dashes: always a valid header value.
        HeaderValue::from_bytes(&v).unwrap_or(HeaderValue::from_static(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn continues_a_valid_trace_with_a_new_span() {
        let mut h = HeaderMap::new();
        h.insert(TRACEPARENT, HeaderValue::from_static(VALID));
        let c = TraceContext::from_headers(&h);
        assert_eq!(c.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(c.parent_id_hex().as_deref(), Some("00f067aa0ba902b7"));
        assert_ne!(c.span_id_hex(), "00f067aa0ba902b7");
        let out = c.header();
        let (t, p, f) = parse(out.to_str().unwrap()).unwrap();
        assert_eq!((t, p, f), (c.trace_id, c.span_id, 1));
    }

    #[test]
    fn rejects_malformed_and_starts_a_new_trace() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
        // A later version may carry more fields.
        assert!(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x").is_some());
        let c = TraceContext::from_headers(&HeaderMap::new());
        assert!(c.parent_id.is_none());
        assert_eq!(c.flags, 1);
        assert!(parse(c.header().to_str().unwrap()).is_some());
    }
}
