//! The Grafana dashboard (`deploy/grafana/warden-dashboard.json`) is valid JSON of the shape
//! Grafana imports, and every metric it queries is one Warden exports and documents.

use std::collections::BTreeSet;

fn read(rel: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `warden_*` names in a text, without histogram suffixes.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("warden_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        out.insert(base.to_string());
        rest = &tail[end..];
    }
    out
}

#[test]
fn dashboard_queries_only_exported_documented_metrics() {
    let dash: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/warden-dashboard.json")).expect("JSON");
    assert!(dash["title"].is_string() && dash["uid"].is_string());
    let panels = dash["panels"].as_array().expect("panels");
    let mut exprs = String::new();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id");
        let g = &p["gridPos"];
        assert!(
            g["w"].as_u64().unwrap() <= 24
                && g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24
        );
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push_str(t["expr"].as_str().unwrap());
            exprs.push('\n');
        }
    }
    let used = metric_names(&exprs);
    assert!(used.len() >= 12, "{used:?}");
    let source = read("gateway/src/metrics.rs") + &read("federation/src/metrics.rs");
    let exported = metric_names(&source);
    let documented = metric_names(&read("docs/metrics.md"));
    for m in &used {
        assert!(exported.contains(m), "{m} is queried but not exported");
        assert!(
            documented.contains(m),
            "{m} is queried but not in docs/metrics.md"
        );
    }
}
