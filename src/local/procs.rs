//! Child processes on loopback for benchmarks and the demo: this binary's own subcommands (and
//! HAProxy), each read for its one JSON "listening" line and killed by its PID on drop.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running child.
pub struct Proc {
    child: Option<Child>,
    pub info: Value,
}

impl Proc {
    pub fn addr(&self, key: &str) -> Result<String> {
        self.info[key]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no {key} in {}", self.info))
    }

    /// SIGKILL by PID, then reap.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

/// Runs `warden <args>` (logging warnings only) and waits for its listening line.
pub async fn warden(args: &[&str], log: &Path, token: &str) -> Result<Proc> {
    warden_logging(args, log, token, "warn").await
}

/// [`warden`] with a log filter (`WARDEN_LOG`); the log file is appended to.
pub async fn warden_logging(args: &[&str], log: &Path, token: &str, filter: &str) -> Result<Proc> {
    let exe = std::env::current_exe().context("locating the warden binary")?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut child = Command::new(exe)
        .args(args)
        .env("WARDEN_ADMIN_TOKEN", token)
        .env("WARDEN_LOG", filter)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(file))
        .spawn()
        .with_context(|| format!("starting warden {args:?}"))?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = match tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await {
        Ok(Ok(Some(l))) => l,
        _ => bail!("warden {args:?} did not start; see {}", log.display()),
    };
    Ok(Proc {
        child: Some(child),
        info: serde_json::from_str(&line)?,
    })
}

/// Runs HAProxy in HTTP mode in front of `backend`, listening on `listen`; `None` if absent.
pub async fn haproxy(dir: &Path, listen: &str, backend: &str) -> Result<Option<Proc>> {
    if std::process::Command::new("haproxy")
        .arg("-v")
        .output()
        .is_err()
    {
        return Ok(None);
    }
    let cfg = format!(
        "global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n  option http-keep-alive\nfrontend fe\n  bind {listen}\n  default_backend be\nbackend be\n  server s1 {backend}\n"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg)?;
    let child = Command::new("haproxy")
        .args(["-f", &path.display().to_string(), "-db"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.join("haproxy.log"))?))
        .spawn()
        .context("starting haproxy")?;
    // Wait until it accepts.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(listen).await.is_ok() {
            return Ok(Some(Proc {
                child: Some(child),
                info: serde_json::json!({"addr": listen}),
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("haproxy did not start listening on {listen}")
}

/// A loopback port that was free a moment ago (for HAProxy, which needs a fixed address).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
