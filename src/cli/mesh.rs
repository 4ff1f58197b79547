//! `warden mesh …`: the mesh as a whole. `config get|set|diff`: the gateway settings kept in
//! the store, mesh-wide or for one cluster (`--cluster`); `set` replaces the document with a
//! YAML or JSON file's (`{}` clears it), `diff` prints, field by field, what `set` would
//! change and writes nothing. `validate`, `audit`; and the observability reads: `signals`
//! (golden signals per edge), `placements` (where each gateway sends each service's traffic
//! and why), `traces ID` and `logs` (recent requests the gateways recorded).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use warden_federation::mesh_config::{ConfigScope, MeshConfig};
use warden_federation::recent::{RecentQuery, RecentRequests};
use warden_federation::wire::ValidateBundle;

use super::client::Conn;

#[derive(Subcommand)]
pub enum MeshCmd {
    /// Mesh-wide (or one cluster's) gateway settings: timeouts, retries, health, outlier
    /// detection, failback ramp, authorization default, access log.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Check a bundle of objects (YAML or JSON: mesh_config, cluster_configs,
    /// traffic_policies, security_policies, routes, resilience_policies, jwt_policies,
    /// authorization_policies) against the mesh without writing it. Prints every error and
    /// warning; exits non-zero when there is an error.
    Validate {
        #[command(flatten)]
        conn: Conn,
        #[arg(short = 'f', long)]
        file: PathBuf,
    },
    /// Who changed what through the API, oldest first: `revision time who what`.
    Audit {
        #[command(flatten)]
        conn: Conn,
        /// Only changes after this store revision.
        #[arg(long, default_value_t = 0)]
        since: u64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Golden signals per edge across the mesh: requests, errors, rate, p50/p99, as each
    /// cluster's gateway reported them.
    Signals {
        #[command(flatten)]
        conn: Conn,
        /// 1m or 5m.
        #[arg(long, default_value = "1m")]
        window: String,
        /// Only this service (namespace/service).
        #[arg(long)]
        service: Option<String>,
    },
    /// Where each cluster's gateway sends each service's traffic now, and why (each gateway's
    /// `/explain`, as it last reported it).
    Placements {
        #[command(flatten)]
        conn: Conn,
        /// Only this service (namespace/service).
        #[arg(long)]
        service: Option<String>,
        /// Only this cluster's gateway.
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Every hop of one trace the gateways recorded (sampled requests and every 5xx).
    Traces {
        #[command(flatten)]
        conn: Conn,
        /// 32 hex digits, as in a traceparent header or an access log line.
        trace_id: String,
    },
    /// The newest requests the gateways recorded (sampled ones and every 5xx), newest first.
    Logs {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        service: Option<String>,
        /// A class (5xx) or one status (503).
        #[arg(long)]
        status: Option<String>,
        /// Only requests since then: a duration ago (30s, 5m, 2h) or milliseconds since the
        /// Unix epoch.
        #[arg(long)]
        since: Option<String>,
        /// Only requests this cluster's gateway served.
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Args)]
pub struct Target {
    #[command(flatten)]
    conn: Conn,
    /// One cluster's overrides instead of the mesh-wide document.
    #[arg(long)]
    cluster: Option<String>,
}

impl Target {
    fn scope(&self) -> ConfigScope {
        match &self.cluster {
            Some(c) => ConfigScope::Cluster(c.clone()),
            None => ConfigScope::Mesh,
        }
    }
}

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Print the document (JSON) and the revision it was read at.
    Get(Target),
    /// Replace the document with a file's. With --dry-run, print what would change only.
    Set {
        #[command(flatten)]
        target: Target,
        #[arg(short = 'f', long)]
        file: PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
    /// Print what `set -f FILE` would change, field by field; writes nothing.
    Diff {
        #[command(flatten)]
        target: Target,
        #[arg(short = 'f', long)]
        file: PathBuf,
    },
}

fn read(file: &Path) -> anyhow::Result<MeshConfig> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let config: MeshConfig = serde_saphyr::from_str(&text)
        .with_context(|| format!("{}: not a mesh configuration", file.display()))?;
    config
        .validate()
        .with_context(|| format!("{}", file.display()))?;
    Ok(config)
}

/// `path: current -> proposed` for every field that differs (`-` for unset).
pub fn diff_lines(current: &MeshConfig, proposed: &MeshConfig) -> Vec<String> {
    let (a, b) = (current.set_fields(), proposed.set_fields());
    let find = |v: &[(&'static str, String)], p: &str| {
        v.iter().find(|(k, _)| *k == p).map(|(_, v)| v.clone())
    };
    MeshConfig::FIELDS
        .iter()
        .filter_map(|p| {
            let (x, y) = (find(&a, p), find(&b, p));
            (x != y).then(|| {
                let show = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                format!("{p}: {} -> {}", show(x), show(y))
            })
        })
        .collect()
}

fn name(scope: &ConfigScope) -> String {
    match scope {
        ConfigScope::Mesh => "mesh config".into(),
        ConfigScope::Cluster(c) => format!("cluster {c} config"),
    }
}

pub async fn run(cmd: MeshCmd) -> anyhow::Result<()> {
    let cmd = match cmd {
        MeshCmd::Config(c) => c,
        MeshCmd::Validate { conn, file } => return validate(conn, &file).await,
        MeshCmd::Audit { conn, since, limit } => {
            for r in conn.client()?.audit(since, limit).await?.items {
                println!("{} {} {} {}", r.revision, r.at, r.who, r.what);
            }
            return Ok(());
        }
        MeshCmd::Signals {
            conn,
            window,
            service,
        } => {
            let s = conn.client()?.signals(&window, service.as_deref()).await?;
            println!(
                "{:<24} {:<10} {:<10} {:>9} {:>7} {:>9} {:>9} {:>10} {:>10}  REPORTED BY",
                "SERVICE", "FROM", "TO", "REQ/S", "ERR%", "P50 MS", "P99 MS", "SENT KB", "BACK KB"
            );
            let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
            for e in &s.edges {
                let x = &e.edge;
                println!(
                    "{:<24} {:<10} {:<10} {:>9.2} {:>7.2} {:>9} {:>9} {:>10.1} {:>10.1}  {}",
                    x.service,
                    x.src_cluster,
                    x.dst_cluster,
                    x.requests_per_second,
                    x.error_rate * 100.0,
                    ms(x.p50_ms),
                    ms(x.p99_ms),
                    x.request_bytes as f64 / 1e3,
                    x.response_bytes as f64 / 1e3,
                    e.reported_by
                );
            }
            println!(
                "window {}s; {} of {} node(s) answered",
                s.window_s, s.nodes_answered, s.nodes_asked
            );
            return Ok(());
        }
        MeshCmd::Placements {
            conn,
            service,
            cluster,
        } => return super::placements::run(conn, service, cluster).await,
        MeshCmd::Traces { conn, trace_id } => {
            let r = conn.client()?.trace(&trace_id).await?;
            print_records(&r);
            return Ok(());
        }
        MeshCmd::Logs {
            conn,
            service,
            status,
            since,
            cluster,
            limit,
        } => {
            let (status, status_class) = match status.as_deref().map(parse_status) {
                Some(s) => s?,
                None => (None, None),
            };
            let q = RecentQuery {
                trace_id: None,
                service,
                status,
                status_class,
                since_ms: since.as_deref().map(parse_since).transpose()?,
                cluster,
                limit,
            };
            print_records(&conn.client()?.recent_requests(&q).await?);
            return Ok(());
        }
    };
    match cmd {
        ConfigCmd::Get(t) => {
            let doc = t.conn.client()?.config(&t.scope()).await?;
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        ConfigCmd::Set {
            target,
            file,
            dry_run,
        } => {
            let config = read(&file)?;
            let (client, scope) = (target.conn.client()?, target.scope());
            if dry_run {
                let d = client.dry_run_config(&scope, &config).await?;
                let current = d.current.unwrap_or_default();
                let lines = diff_lines(&current, &d.proposed);
                if lines.is_empty() {
                    println!("{}: unchanged", name(&scope));
                } else {
                    println!("{}: would change {} field(s)", name(&scope), lines.len());
                }
            } else {
                let doc = client.put_config(&scope, &config).await?;
                println!("{}: applied at revision {}", name(&scope), doc.revision);
            }
        }
        ConfigCmd::Diff { target, file } => {
            let config = read(&file)?;
            let (client, scope) = (target.conn.client()?, target.scope());
            let d = client.dry_run_config(&scope, &config).await?;
            let lines = diff_lines(&d.current.unwrap_or_default(), &d.proposed);
            if lines.is_empty() {
                println!("{}: unchanged", name(&scope));
            }
            for l in lines {
                println!("{l}");
            }
        }
    }
    Ok(())
}

/// `5xx` (a class) or `503` (one status).
fn parse_status(v: &str) -> anyhow::Result<(Option<u16>, Option<u8>)> {
    if let Some(c) = v.strip_suffix("xx") {
        let c: u8 = c
            .parse()
            .with_context(|| format!("--status {v}: not a class like 5xx"))?;
        return Ok((None, Some(c)));
    }
    let s: u16 = v
        .parse()
        .with_context(|| format!("--status {v}: not a status like 503"))?;
    Ok((Some(s), None))
}

/// `30s`, `5m`, `2h` ago, or milliseconds since the Unix epoch.
fn parse_since(v: &str) -> anyhow::Result<u64> {
    let unit = match v.chars().last() {
        Some('s') => 1_000,
        Some('m') => 60_000,
        Some('h') => 3_600_000,
        _ => {
            return v
                .parse()
                .with_context(|| format!("--since {v}: not 30s, 5m, 2h or epoch milliseconds"));
        }
    };
    let n: u64 = v[..v.len() - 1]
        .parse()
        .with_context(|| format!("--since {v}: not 30s, 5m, 2h or epoch milliseconds"))?;
    Ok(warden_federation::clock::now_ms().saturating_sub(n.saturating_mul(unit)))
}

/// One line per record: when, who, the request, how it ended, where it went, the ids.
fn print_records(r: &RecentRequests) {
    for x in &r.records {
        let (rec, when) = (&x.record, x.record.at_ms);
        println!(
            "{when} {} {} {} {} {} -> {} {}ms {} retries={} endpoint={} trace={} span={} parent={}{}",
            x.reported_by,
            rec.listener,
            rec.method,
            rec.service,
            rec.path,
            rec.status,
            format_args!("{:.1}", rec.duration_ms),
            rec.dst_cluster,
            rec.retries,
            rec.endpoint.as_deref().unwrap_or("-"),
            rec.trace_id,
            rec.span_id,
            rec.parent_span_id.as_deref().unwrap_or("-"),
            rec.error
                .as_deref()
                .map(|e| format!(" error={e}"))
                .unwrap_or_default(),
        );
    }
    println!(
        "{} record(s); {} of {} node(s) answered",
        r.records.len(),
        r.nodes_answered,
        r.nodes_asked
    );
}

async fn validate(conn: Conn, file: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let bundle: ValidateBundle = serde_saphyr::from_str(&text)
        .with_context(|| format!("{}: not a bundle of mesh objects", file.display()))?;
    let report = conn.client()?.validate(&bundle).await?;
    for (kind, list) in [("error", &report.errors), ("warning", &report.warnings)] {
        for f in list {
            println!("{kind} {}: {} ({})", f.field, f.message, f.code);
        }
    }
    let (e, w) = (report.errors.len(), report.warnings.len());
    if report.valid {
        println!("valid: {w} warning(s)");
        Ok(())
    } else {
        anyhow::bail!("{e} error(s), {w} warning(s)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_each_changed_field_in_a_fixed_order() {
        let a: MeshConfig = serde_json::from_str(
            r#"{"telemetry":{"access_log":true},"timeouts":{"per_try_ms":5}}"#,
        )
        .unwrap();
        let b: MeshConfig = serde_json::from_str(
            r#"{"timeouts":{"per_try_ms":7},"retries":{"max_retries":1},"telemetry":{"access_log":true}}"#,
        )
        .unwrap();
        assert_eq!(
            diff_lines(&a, &b),
            vec![
                "timeouts.per_try_ms: 5 -> 7".to_string(),
                "retries.max_retries: - -> 1".to_string()
            ]
        );
        assert!(diff_lines(&b, &b).is_empty());
    }
}
