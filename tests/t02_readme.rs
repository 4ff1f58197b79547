//! README's walkthrough runs as written: the `sh` blocks of "A 3-node federation by hand" and
//! "Gateways by hand" (and the block that stops everything), taken from README.md itself so
//! they cannot drift, run in order by bash with `set -euo pipefail`.
//!
//! The walkthrough uses fixed loopback ports (7710, 15001, ...), as a newcomer would; so it runs
//! in a network namespace this test makes (its own loopback, nothing else listening), which
//! needs root. Only three things are changed: the build line is dropped (the test has the
//! binary), `$W` is that binary, and `/tmp/warden` is a temporary directory.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The ```sh blocks of the section under `heading` (up to the next `## `).
fn blocks_under(readme: &str, heading: &str) -> Vec<String> {
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?} section"));
    let rest = &readme[start + heading.len()..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut out = Vec::new();
    let mut it = section.split("```");
    it.next();
    while let (Some(code), rest) = (it.next(), it.next()) {
        if let Some(body) = code.strip_prefix("sh\n") {
            out.push(body.to_string());
        }
        if rest.is_none() {
            break;
        }
    }
    out
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A network namespace of this test's own, with its loopback up; removed on drop.
struct Netns(String);

impl Netns {
    fn create() -> Result<Self, String> {
        let name = format!("wdreadme{}", std::process::id() % 100_000);
        let run = |args: &[&str]| {
            let o = Command::new("ip")
                .args(args)
                .output()
                .map_err(|e| format!("ip: {e}"))?;
            o.status
                .success()
                .then_some(())
                .ok_or_else(|| String::from_utf8_lossy(&o.stderr).to_string())
        };
        run(&["netns", "add", &name])?;
        let ns = Netns(name);
        run(&["-n", &ns.0, "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Stops by PID whatever the walkthrough left running (its own last block should have).
fn stop_pids(file: &Path) {
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    for pid in text
        .split_whitespace()
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
    {
        let _ = Command::new("bash")
            .args(["-c", &format!("kill -KILL {pid} 2> /dev/null")])
            .status();
    }
}

/// The by-hand walkthrough: three nodes, two clusters, a request served locally, the local
/// backend killed and the same request served by the other cluster, `warden check` passing.
#[test]
fn the_readme_walkthrough_runs_as_written() {
    if !is_root() {
        println!("skipped: needs root (the walkthrough's fixed ports run in a network namespace)");
        return;
    }
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let mut script = blocks_under(&readme, "## A 3-node federation by hand");
    script.extend(blocks_under(&readme, "## Gateways by hand"));
    assert_eq!(
        script.len(),
        3,
        "expected the federation, gateways and stop blocks"
    );
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    let bin = env!("CARGO_BIN_EXE_warden");
    let mut text = String::from("set -euo pipefail\n");
    for block in &script {
        for line in block.lines() {
            if line.trim() == "cargo build --release" {
                continue;
            }
            let line = line
                .replace("W=./target/release/warden", &format!("W={bin}"))
                .replace("/tmp/warden", &work.display().to_string());
            text.push_str(&line);
            text.push('\n');
        }
    }
    let ns = match Netns::create() {
        Ok(ns) => ns,
        Err(e) => panic!("cannot make a network namespace: {e}"),
    };
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(["120", "ip", "netns", "exec", &ns.0, "bash", "-c", &text])
        .env_remove("WARDEN_API")
        .env_remove("WARDEN_ADMIN_TOKEN")
        .output()
        .expect("run bash");
    stop_pids(&work.join("pids"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let logs: String = ["n1.log", "gw-east.log", "gw-west.log"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(work.join(f)).ok())
        .collect();
    assert!(
        out.status.success(),
        "the walkthrough failed ({:?}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- logs\n{logs}",
        out.status
    );
    let east = stdout
        .find("\"server\":\"east-1\"")
        .unwrap_or_else(|| panic!("no answer from east-1:\n{stdout}"));
    let west = stdout
        .find("\"server\":\"west-1\"")
        .unwrap_or_else(|| panic!("no answer from west-1:\n{stdout}"));
    assert!(east < west, "east-1 answered first, then west-1:\n{stdout}");
    assert!(stdout.contains("ready\n"), "{stdout}");
    assert!(
        !stdout.contains("warning:"),
        "readyz warns of nothing: {stdout}"
    );
    assert!(
        stdout.contains(", 0 failed"),
        "warden check passed:\n{stdout}"
    );
    assert!(
        !work.exists(),
        "the last block stopped everything and removed the directory"
    );
    println!("{stdout}");
    println!(
        "walkthrough ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
