//! `warden route`: apply L7 routes from a file, read them, delete them.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use warden_federation::wire::{DryRunChange, RouteBody};

use super::client::Conn;

#[derive(Subcommand)]
pub enum RouteCmd {
    /// Create or replace routes from a YAML or JSON file: one document per route, each with
    /// its `id`. With --dry-run, print what would change and write nothing.
    Apply {
        #[command(flatten)]
        conn: Conn,
        #[arg(short = 'f', long)]
        file: PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
    /// Print one route, or every route without an id.
    Get {
        #[command(flatten)]
        conn: Conn,
        id: Option<String>,
    },
    /// Delete a route.
    Delete {
        #[command(flatten)]
        conn: Conn,
        id: String,
    },
}

/// The routes in `text`: YAML documents (JSON is YAML too), each naming its id.
fn parse(text: &str, file: &std::path::Path) -> anyhow::Result<Vec<(String, RouteBody)>> {
    let docs: Vec<RouteBody> = serde_saphyr::from_multiple(text)
        .with_context(|| format!("{}: not routes", file.display()))?;
    if docs.is_empty() {
        bail!("{}: no route in it", file.display());
    }
    docs.into_iter()
        .enumerate()
        .map(|(i, body)| match body.id.clone() {
            Some(id) => Ok((id, body)),
            None => bail!("{}: document {} has no id", file.display(), i + 1),
        })
        .collect()
}

pub async fn run(cmd: RouteCmd) -> anyhow::Result<()> {
    match cmd {
        RouteCmd::Apply {
            conn,
            file,
            dry_run,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let client = conn.client()?;
            for (id, body) in parse(&text, &file)? {
                if dry_run {
                    let d = client
                        .dry_run_route(&id, &body)
                        .await
                        .with_context(|| format!("route {id}"))?;
                    let change = match d.change {
                        DryRunChange::Create => "would be created",
                        DryRunChange::Replace => "would be replaced",
                        DryRunChange::Unchanged => "unchanged",
                    };
                    println!("route {id}: {change}");
                } else {
                    client
                        .put_route(&id, &body)
                        .await
                        .with_context(|| format!("route {id}"))?;
                    println!("route {id}: applied");
                }
            }
        }
        RouteCmd::Get { conn, id } => {
            let client = conn.client()?;
            let text = match id {
                Some(id) => serde_json::to_string_pretty(&client.route(&id).await?)?,
                None => serde_json::to_string_pretty(&client.routes().await?.items)?,
            };
            println!("{text}");
        }
        RouteCmd::Delete { conn, id } => {
            conn.client()?.delete_route(&id).await?;
            println!("route {id}: deleted");
        }
    }
    Ok(())
}
