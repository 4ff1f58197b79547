//! `warden route`, `warden resilience`, `warden jwt` and `warden authz`: apply stored objects from a file, read them,
//! delete them. What differs per kind is its [`Kind`] impl.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde::Serialize;
use serde::de::DeserializeOwned;
use warden_federation::authn::JwtPolicy;
use warden_federation::authz::AuthorizationPolicy;
use warden_federation::client::{ClientError, FederationClient};
use warden_federation::resilience::ResiliencePolicy;
use warden_federation::route::Route;
use warden_federation::wire::{
    AuthorizationBody, DryRun, DryRunChange, JwtBody, ResilienceBody, RouteBody,
};

use super::client::Conn;

#[derive(Subcommand)]
pub enum ObjectCmd {
    /// Create or replace objects from a YAML or JSON file: one document per object, each with
    /// its `id`. With --dry-run, print what would change and write nothing.
    Apply {
        #[command(flatten)]
        conn: Conn,
        #[arg(short = 'f', long)]
        file: PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
    /// Print one object, or every one without an id.
    Get {
        #[command(flatten)]
        conn: Conn,
        id: Option<String>,
    },
    /// Delete an object.
    Delete {
        #[command(flatten)]
        conn: Conn,
        id: String,
    },
}

/// A kind of stored object the CLI applies.
pub trait Kind {
    /// For messages: "route", "resilience policy".
    const WHAT: &'static str;
    type Body: DeserializeOwned + Send + Sync;
    type Object: Serialize;
    fn id(b: &Self::Body) -> Option<String>;
    async fn put(c: &FederationClient, id: &str, b: &Self::Body) -> Result<(), ClientError>;
    async fn dry_run(
        c: &FederationClient,
        id: &str,
        b: &Self::Body,
    ) -> Result<DryRunChange, ClientError>;
    async fn get(c: &FederationClient, id: &str) -> Result<Self::Object, ClientError>;
    async fn list(c: &FederationClient) -> Result<Vec<Self::Object>, ClientError>;
    async fn delete(c: &FederationClient, id: &str) -> Result<(), ClientError>;
}

pub struct Routes;

impl Kind for Routes {
    const WHAT: &'static str = "route";
    type Body = RouteBody;
    type Object = Route;
    fn id(b: &RouteBody) -> Option<String> {
        b.id.clone()
    }
    async fn put(c: &FederationClient, id: &str, b: &RouteBody) -> Result<(), ClientError> {
        c.put_route(id, b).await.map(|_| ())
    }
    async fn dry_run(
        c: &FederationClient,
        id: &str,
        b: &RouteBody,
    ) -> Result<DryRunChange, ClientError> {
        c.dry_run_route(id, b)
            .await
            .map(|d: DryRun<Route>| d.change)
    }
    async fn get(c: &FederationClient, id: &str) -> Result<Route, ClientError> {
        c.route(id).await
    }
    async fn list(c: &FederationClient) -> Result<Vec<Route>, ClientError> {
        c.routes().await.map(|l| l.items)
    }
    async fn delete(c: &FederationClient, id: &str) -> Result<(), ClientError> {
        c.delete_route(id).await
    }
}

pub struct Resilience;

impl Kind for Resilience {
    const WHAT: &'static str = "resilience policy";
    type Body = ResilienceBody;
    type Object = ResiliencePolicy;
    fn id(b: &ResilienceBody) -> Option<String> {
        b.id.clone()
    }
    async fn put(c: &FederationClient, id: &str, b: &ResilienceBody) -> Result<(), ClientError> {
        c.put_resilience_policy(id, b).await.map(|_| ())
    }
    async fn dry_run(
        c: &FederationClient,
        id: &str,
        b: &ResilienceBody,
    ) -> Result<DryRunChange, ClientError> {
        c.dry_run_resilience_policy(id, b).await.map(|d| d.change)
    }
    async fn get(c: &FederationClient, id: &str) -> Result<ResiliencePolicy, ClientError> {
        c.resilience_policy(id).await
    }
    async fn list(c: &FederationClient) -> Result<Vec<ResiliencePolicy>, ClientError> {
        c.resilience_policies().await.map(|l| l.items)
    }
    async fn delete(c: &FederationClient, id: &str) -> Result<(), ClientError> {
        c.delete_resilience_policy(id).await
    }
}

pub struct Jwt;

impl Kind for Jwt {
    const WHAT: &'static str = "JWT policy";
    type Body = JwtBody;
    type Object = JwtPolicy;
    fn id(b: &JwtBody) -> Option<String> {
        b.id.clone()
    }
    async fn put(c: &FederationClient, id: &str, b: &JwtBody) -> Result<(), ClientError> {
        c.put_jwt_policy(id, b).await.map(|_| ())
    }
    async fn dry_run(
        c: &FederationClient,
        id: &str,
        b: &JwtBody,
    ) -> Result<DryRunChange, ClientError> {
        c.dry_run_jwt_policy(id, b).await.map(|d| d.change)
    }
    async fn get(c: &FederationClient, id: &str) -> Result<JwtPolicy, ClientError> {
        c.jwt_policy(id).await
    }
    async fn list(c: &FederationClient) -> Result<Vec<JwtPolicy>, ClientError> {
        c.jwt_policies().await.map(|l| l.items)
    }
    async fn delete(c: &FederationClient, id: &str) -> Result<(), ClientError> {
        c.delete_jwt_policy(id).await
    }
}

pub struct Authorization;

impl Kind for Authorization {
    const WHAT: &'static str = "authorization policy";
    type Body = AuthorizationBody;
    type Object = AuthorizationPolicy;
    fn id(b: &AuthorizationBody) -> Option<String> {
        b.id.clone()
    }
    async fn put(c: &FederationClient, id: &str, b: &AuthorizationBody) -> Result<(), ClientError> {
        c.put_authorization_policy(id, b).await.map(|_| ())
    }
    async fn dry_run(
        c: &FederationClient,
        id: &str,
        b: &AuthorizationBody,
    ) -> Result<DryRunChange, ClientError> {
        c.dry_run_authorization_policy(id, b)
            .await
            .map(|d| d.change)
    }
    async fn get(c: &FederationClient, id: &str) -> Result<AuthorizationPolicy, ClientError> {
        c.authorization_policy(id).await
    }
    async fn list(c: &FederationClient) -> Result<Vec<AuthorizationPolicy>, ClientError> {
        c.authorization_policies().await.map(|l| l.items)
    }
    async fn delete(c: &FederationClient, id: &str) -> Result<(), ClientError> {
        c.delete_authorization_policy(id).await
    }
}

/// The objects in `text`: YAML documents (JSON is YAML too), each naming its id.
fn parse<K: Kind>(text: &str, file: &std::path::Path) -> anyhow::Result<Vec<(String, K::Body)>> {
    let docs: Vec<K::Body> = serde_saphyr::from_multiple(text)
        .with_context(|| format!("{}: not {}s", file.display(), K::WHAT))?;
    if docs.is_empty() {
        bail!("{}: no {} in it", file.display(), K::WHAT);
    }
    docs.into_iter()
        .enumerate()
        .map(|(i, body)| match K::id(&body) {
            Some(id) => Ok((id, body)),
            None => bail!("{}: document {} has no id", file.display(), i + 1),
        })
        .collect()
}

pub async fn run<K: Kind>(cmd: ObjectCmd) -> anyhow::Result<()> {
    let what = K::WHAT;
    match cmd {
        ObjectCmd::Apply {
            conn,
            file,
            dry_run,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let client = conn.client()?;
            for (id, body) in parse::<K>(&text, &file)? {
                if dry_run {
                    let change = K::dry_run(&client, &id, &body)
                        .await
                        .with_context(|| format!("{what} {id}"))?;
                    let change = match change {
                        DryRunChange::Create => "would be created",
                        DryRunChange::Replace => "would be replaced",
                        DryRunChange::Unchanged => "unchanged",
                    };
                    println!("{what} {id}: {change}");
                } else {
                    K::put(&client, &id, &body)
                        .await
                        .with_context(|| format!("{what} {id}"))?;
                    println!("{what} {id}: applied");
                }
            }
        }
        ObjectCmd::Get { conn, id } => {
            let client = conn.client()?;
            let text = match id {
                Some(id) => serde_json::to_string_pretty(&K::get(&client, &id).await?)?,
                None => serde_json::to_string_pretty(&K::list(&client).await?)?,
            };
            println!("{text}");
        }
        ObjectCmd::Delete { conn, id } => {
            K::delete(&conn.client()?, &id).await?;
            println!("{what} {id}: deleted");
        }
    }
    Ok(())
}
