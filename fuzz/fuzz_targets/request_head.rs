//! A request head as a client sends it, parsed as hyper parses it (httparse), then through the
//! gateway's own head stages: naming the service (both listeners), the Host check and the
//! cleaning before forwarding. Nothing may panic, and what leaves `clean` carries no
//! hop-by-hop or `x-warden-*` header and at most `te: trailers`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_gateway::proxy::context::Listener;
use warden_gateway::proxy::{headers, naming};

fuzz_target!(|data: &[u8]| {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut slots);
    let Ok(httparse::Status::Complete(_)) = req.parse(data) else {
        return;
    };
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return;
    };
    let mut b = http::Request::builder().method(method).uri(path);
    for h in req.headers.iter() {
        b = b.header(h.name, h.value);
    }
    let Ok(r) = b.body(()) else {
        return;
    };
    let (mut parts, ()) = r.into_parts();
    for listener in [Listener::Outbound, Listener::EastWest] {
        let _ = naming::service_of(&parts.uri, &parts.headers, listener);
    }
    let _ = headers::check_host(&parts.uri, &parts.headers);
    headers::clean(&mut parts.headers);
    for name in parts.headers.keys() {
        let n = name.as_str();
        assert!(!n.starts_with("x-warden-"), "{n} passed clean");
        assert!(
            !matches!(
                n,
                "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade"
            ),
            "{n} passed clean"
        );
    }
    let te: Vec<_> = parts.headers.get_all("te").iter().collect();
    assert!(
        te.is_empty() || te == ["trailers"],
        "te {te:?} passed clean"
    );
});
