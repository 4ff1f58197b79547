//! The web console at `/ui`: a page and its static assets, compiled into the binary
//! (`federation/ui/`). It holds no data of its own: the page reads the same public API any
//! client does (the browser's origin is this node), so these routes sit outside the API's
//! authentication — loopback reads stay open, other callers log in with the admin token,
//! which the page sends as a bearer header (never a cookie, so no cross-site request can use
//! it). Every answer carries a strict Content-Security-Policy: scripts, styles and requests
//! only from this origin, no framing.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// (file name, content type, contents).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/api.js"),
    ),
    (
        "graph.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/graph.js"),
    ),
    (
        "panels.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/panels.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/style.css"),
    ),
];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn serve(name: &str) -> Response {
    let Some((_, kind, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such console file").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, *kind),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *body,
    )
        .into_response()
}

async fn index() -> Response {
    serve("index.html")
}

async fn asset(Path(file): Path<String>) -> Response {
    serve(&file)
}

/// `/ui`, `/ui/` and `/ui/{file}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(crate::paths::CONSOLE, get(index))
        .route("/ui/", get(index))
        .route("/ui/{file}", get(asset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_served_with_its_type_and_the_policy() {
        for (name, kind, _) in ASSETS {
            let r = serve(name);
            assert_eq!(r.status(), StatusCode::OK, "{name}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], *kind);
            assert_eq!(r.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        }
        assert_eq!(serve("../Cargo.toml").status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_page_loads_only_files_that_are_served() {
        let html = ASSETS[0].2;
        for part in html
            .split("src=\"")
            .skip(1)
            .chain(html.split("href=\"").skip(1))
        {
            let file = part.split('"').next().unwrap_or("");
            if file.starts_with("data:") {
                continue;
            }
            let name = file.trim_start_matches("/ui/");
            assert!(
                ASSETS.iter().any(|(n, _, _)| *n == name),
                "{file} is not a console asset"
            );
        }
    }
}
