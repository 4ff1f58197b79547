//! The OpenAPI document is generated from the handlers' annotations (utoipa); `docs/openapi.json`
//! must match what the code generates. Regenerate it with
//! `WARDEN_UPDATE_OPENAPI=1 cargo test --workspace --test openapi`.

use std::path::Path;

#[test]
fn docs_openapi_json_is_current() {
    let doc = warden_federation::api::openapi()
        .to_pretty_json()
        .expect("serialize the document");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    if std::env::var_os("WARDEN_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, format!("{doc}\n")).expect("write docs/openapi.json");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have.trim() == doc.trim(),
        "docs/openapi.json is stale: run WARDEN_UPDATE_OPENAPI=1 cargo test --workspace --test openapi"
    );
}

#[test]
fn every_operation_is_tagged_and_answers_errors_as_documented() {
    let doc: serde_json::Value =
        serde_json::to_value(warden_federation::api::openapi()).expect("document as JSON");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 25, "{} paths", paths.len());
    let mut ids = std::collections::BTreeSet::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            assert!(
                ids.insert(id.clone()),
                "{method} {path}: operationId {id:?} is not unique"
            );
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{method} {path} has no tag"
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path} has no responses");
            if method != "get" {
                assert!(
                    responses.contains_key("401") || path == "/api/v1/join",
                    "{method} {path}: writes need the admin token, document 401"
                );
            }
        }
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
}

/// Every path the clients use (`warden_federation::paths`) is one the document lists, so a
/// client cannot call a route the server does not have.
#[test]
fn every_write_documents_dry_run() {
    let v: serde_json::Value =
        serde_json::from_str(&warden_federation::api::openapi().to_pretty_json().unwrap()).unwrap();
    for (path, item) in v["paths"].as_object().unwrap() {
        for method in ["put", "post", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let named = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "dry_run"));
            assert!(named, "{method} {path} does not document dry_run");
        }
    }
}

#[test]
fn every_client_path_is_a_documented_route() {
    use warden_federation::paths;
    let doc: serde_json::Value =
        serde_json::to_value(warden_federation::api::openapi()).expect("document as JSON");
    let routes: Vec<&String> = doc["paths"].as_object().expect("paths").keys().collect();
    let documented = |p: &str| {
        let p = p.split('?').next().unwrap_or(p);
        let segs: Vec<&str> = p.split('/').collect();
        routes.iter().any(|r| {
            let rs: Vec<&str> = r.split('/').collect();
            rs.len() == segs.len()
                && rs
                    .iter()
                    .zip(&segs)
                    .all(|(r, s)| r == s || (r.starts_with('{') && r.ends_with('}')))
        })
    };
    let all = [
        paths::CLUSTERS.to_string(),
        paths::SERVICES.into(),
        paths::CATALOG.into(),
        paths::LEASES.into(),
        paths::BUNDLES.into(),
        paths::TRUST_STATUS.into(),
        paths::TRAFFIC_POLICIES.into(),
        paths::SECURITY_POLICIES.into(),
        paths::MESH_STATUS.into(),
        paths::MESH_CONFIG.into(),
        paths::MESH_VALIDATE.into(),
        paths::AUDIT.into(),
        paths::OBSERVABILITY_METRICS.into(),
        paths::OBSERVABILITY_TRACES.into(),
        paths::OBSERVABILITY_LOGS.into(),
        paths::OBSERVABILITY_PLACEMENTS.into(),
        paths::cluster_config("east"),
        paths::dry_run(paths::MESH_CONFIG),
        paths::MEMBERS.into(),
        paths::JOIN_TOKENS.into(),
        paths::JOIN.into(),
        paths::WATCH.into(),
        paths::OPENAPI.into(),
        paths::READYZ.into(),
        paths::HEALTHZ.into(),
        paths::METRICS.into(),
        paths::cluster("east"),
        paths::cluster_status("east"),
        paths::lease("east"),
        paths::cluster_gateway("east"),
        paths::export("east", "shop", "cart"),
        paths::bundle("east.test"),
        paths::traffic_policy("p"),
        paths::security_policy("p"),
        paths::ROUTES.into(),
        paths::route("r"),
        paths::route_dry_run("r"),
        paths::member(2),
        paths::watch(7),
    ];
    for p in &all {
        assert!(documented(p), "{p} is not a documented route");
    }
    assert!(
        !documented("/api/v1/nope"),
        "the matcher refuses unknown paths"
    );
}
