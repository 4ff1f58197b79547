//! `warden mesh config get|set|diff`: the gateway settings kept in the store, mesh-wide or
//! for one cluster (`--cluster`). `set` replaces the document with a YAML or JSON file's
//! (`{}` clears it); `diff` prints, field by field, what `set` would change, and writes
//! nothing.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use warden_federation::mesh_config::{ConfigScope, MeshConfig};
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
