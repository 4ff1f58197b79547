//! What a request asks to switch to (an HTTP/1.1 `Upgrade` token or an HTTP/2 extended
//! CONNECT's `:protocol`), whether a target's answer is its yes, and the caller's yes in the
//! caller's own terms. Plain data, no sockets: [`super::upgrade`] moves the bytes.

use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Version};

use super::attempt::Hop;
use super::body::{BoxBody, empty};
use super::headers::clean;

/// How the caller asked to switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// HTTP/1.1 `Connection: upgrade` + `Upgrade: <token>`: answered 101.
    Http1,
    /// HTTP/2 extended CONNECT with `:protocol`: answered 200.
    Connect,
}

/// A request's wish to switch protocols.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// The protocol, e.g. `websocket`.
    pub token: String,
    pub asked: Asked,
}

/// The upgrade `head` asks for, if any (an `h2c` upgrade is none: it is served as HTTP/1.1).
pub fn wanted(head: &Parts) -> Option<Wanted> {
    if head.method == Method::CONNECT {
        let p = head.extensions.get::<hyper::ext::Protocol>()?;
        return Some(Wanted {
            token: p.as_str().to_string(),
            asked: Asked::Connect,
        });
    }
    if head.version != Version::HTTP_11 {
        return None;
    }
    let connection_upgrade = head
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    let token = head.headers.get(http::header::UPGRADE)?.to_str().ok()?;
    // One protocol, a token (RFC 9110 §7.8); a list or h2c is not followed.
    let token = token.trim();
    let is_token = !token.is_empty()
        && token.len() <= 64
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._/".contains(&b));
    (connection_upgrade && is_token && !token.eq_ignore_ascii_case("h2c")).then(|| Wanted {
        token: token.to_ascii_lowercase(),
        asked: Asked::Http1,
    })
}

/// Whether `status` from a target of `hop` is its yes.
pub fn agreed(hop: &Hop<'_>, status: StatusCode) -> bool {
    match hop {
        Hop::Local { h2: false } => status == StatusCode::SWITCHING_PROTOCOLS,
        _ => status == StatusCode::OK,
    }
}

/// The caller's yes: the target's end-to-end headers, then the switch in the caller's terms.
pub fn answer(wanted: &Wanted, target: &HeaderMap) -> Response<BoxBody> {
    let mut headers = target.clone();
    clean(&mut headers);
    headers.remove(http::header::CONTENT_LENGTH);
    let mut resp = Response::new(empty());
    match wanted.asked {
        Asked::Http1 => {
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            headers.insert(
                http::header::CONNECTION,
                HeaderValue::from_static("upgrade"),
            );
            if let Ok(v) = HeaderValue::from_str(&wanted.token) {
                headers.insert(http::header::UPGRADE, v);
            }
        }
        Asked::Connect => *resp.status_mut() = StatusCode::OK,
    }
    *resp.headers_mut() = headers;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn head(version: Version, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder().uri("/ws").version(version);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn an_upgrade_is_a_token_with_connection_upgrade_and_never_h2c() {
        let ws = head(
            Version::HTTP_11,
            &[
                ("connection", "keep-alive, Upgrade"),
                ("upgrade", "WebSocket"),
            ],
        );
        let w = wanted(&ws).unwrap();
        assert_eq!((w.token.as_str(), w.asked), ("websocket", Asked::Http1));
        for refused in [
            head(Version::HTTP_11, &[("upgrade", "websocket")]),
            head(
                Version::HTTP_11,
                &[
                    ("connection", "upgrade, http2-settings"),
                    ("upgrade", "h2c"),
                ],
            ),
            head(
                Version::HTTP_11,
                &[("connection", "upgrade"), ("upgrade", "websocket, foo/2")],
            ),
            head(
                Version::HTTP_10,
                &[("connection", "upgrade"), ("upgrade", "websocket")],
            ),
        ] {
            assert!(wanted(&refused).is_none(), "{:?}", refused.headers);
        }
        let mut connect = head(Version::HTTP_2, &[]);
        connect.method = Method::CONNECT;
        assert!(wanted(&connect).is_none(), "a plain CONNECT is a tunnel");
        connect
            .extensions
            .insert(hyper::ext::Protocol::from_static("websocket"));
        assert_eq!(wanted(&connect).unwrap().asked, Asked::Connect);
    }

    #[test]
    fn the_caller_hears_its_own_kind_of_yes_with_the_targets_headers() {
        let mut target = HeaderMap::new();
        target.insert("sec-websocket-accept", HeaderValue::from_static("abc="));
        target.insert("connection", HeaderValue::from_static("upgrade"));
        target.insert("x-warden-cluster", HeaderValue::from_static("forged"));
        let h1 = Wanted {
            token: "websocket".into(),
            asked: Asked::Http1,
        };
        let r = answer(&h1, &target);
        assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(r.headers()["upgrade"], "websocket");
        assert_eq!(r.headers()["sec-websocket-accept"], "abc=");
        assert!(r.headers().get("x-warden-cluster").is_none());
        let h2 = Wanted {
            asked: Asked::Connect,
            ..h1
        };
        let r = answer(&h2, &target);
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get("upgrade").is_none());
        assert!(agreed(
            &Hop::Local { h2: false },
            StatusCode::SWITCHING_PROTOCOLS
        ));
        assert!(!agreed(&Hop::Local { h2: false }, StatusCode::OK));
        assert!(agreed(&Hop::Remote { trust_domain: "t" }, StatusCode::OK));
    }
}
