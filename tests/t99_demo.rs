//! `warden demo --scenario`: the newcomer's first command runs to the end on this machine and
//! its summary shows the failover happened with no failed request.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_scenario_fails_over_without_failed_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let summary = tmp.path().join("summary.json");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["demo", "--scenario", "--dir"])
        .arg(tmp.path().join("mesh"))
        .arg("--summary-json")
        .arg(&summary)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn warden demo");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let read = |mut r: Box<dyn tokio::io::AsyncRead + Unpin + Send>| {
        tokio::spawn(async move {
            let mut s = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut r, &mut s).await;
            s
        })
    };
    let (out, err) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let status = tokio::time::timeout(Duration::from_secs(180), child.wait())
        .await
        .expect("demo finished within 180 s")
        .unwrap();
    let (out, err) = (out.await.unwrap(), err.await.unwrap());
    assert!(status.success(), "demo failed: {err}\n{out}");
    for step in [
        "[1/7]",
        "[2/7]",
        "[3/7]",
        "[4/7]",
        "[5/7]",
        "[6/7]",
        "[7/7]",
        "Summary",
        "stopped 12 processes",
    ] {
        assert!(out.contains(step), "missing {step:?} in:\n{out}");
    }
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert!(
        s["failover_ms"].as_f64().is_some(),
        "failover happened: {s}"
    );
    assert!(
        s["failback_all_local_ms"].as_f64().is_some(),
        "failback happened: {s}"
    );
    assert!(s["reroute_ms"].as_f64().is_some(), "ledger rerouted: {s}");
    assert!(s["return_ms"].as_f64().is_some(), "ledger returned: {s}");
    assert_eq!(s["quorum_kept"], true, "{s}");
    assert!(s["rotation_requests"].as_u64().unwrap() > 0, "{s}");
    // The canary: about 10 % of ledger on v2 (west) under 90/10, about half under 50/50 (300
    // requests each: the bounds are over five standard deviations wide).
    let v2 = |k: &str| s[k][1].as_f64().unwrap_or(-1.0);
    assert!((0.02..=0.22).contains(&v2("canary_90_10")), "{s}");
    assert!((0.35..=0.65).contains(&v2("canary_50_50")), "{s}");
    assert!(s["canary_requests"].as_u64().unwrap() >= 600, "{s}");
    assert!(s["total_requests"].as_u64().unwrap() > 500, "{s}");
    assert_eq!(s["total_failed"], 0, "no failed request: {s}\n{out}");
}
