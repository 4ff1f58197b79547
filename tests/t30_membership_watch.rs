//! Membership changes and the watch stream across a leader change.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use support::*;

/// A fourth node joins as a learner (a read replica with all data), then is promoted to voter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fourth_node_joins_as_learner_then_is_promoted() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = three_nodes(tmp.path()).await;
    let client = http();
    for i in 0..60 {
        assert_eq!(
            register(&client, &nodes[i % 3], &format!("c{i}")).await,
            Some(201)
        );
    }
    let n4 = NodeProc::start(4, tmp.path(), "127.0.0.1:0", "127.0.0.1:0", "", &[]).await;
    let add_url = nodes[1].url(paths::MEMBERS);
    let n4_body =
        |voter: bool| json!({"id": 4, "raft_addr": n4.raft, "api_addr": n4.api, "voter": voter});
    let (learner_body, voter_body) = (n4_body(false), n4_body(true));
    let add = |body: Value| client.post(&add_url).bearer_auth(TOKEN).json(&body).send();
    assert_eq!(add(learner_body).await.unwrap().status().as_u16(), 200);
    let role_of_4 = |s: &Value| {
        s["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == 4)
            .map(|m| m["role"].clone())
    };
    let s = mesh_status(&client, &nodes[0]).await.unwrap();
    assert_eq!(role_of_4(&s), Some(json!("learner")));
    // The learner has caught up (the leader's log was compacted, so via a snapshot).
    nodes.push(n4);
    converged(&client, &nodes, Duration::from_secs(30)).await;
    let (_, names) = cluster_names(&client, &nodes[3]).await.unwrap();
    assert_eq!(names.len(), 60);
    let s4 = mesh_status(&client, &nodes[3]).await.unwrap();
    assert!(
        s4["snapshot"].as_u64().is_some(),
        "node 4 was brought up by a snapshot: {s4}"
    );

    assert_eq!(add(voter_body).await.unwrap().status().as_u16(), 200);
    let s = mesh_status(&client, &nodes[3]).await.unwrap();
    assert_eq!(role_of_4(&s), Some(json!("voter")));
    // With four voters, losing one still leaves a quorum of three: writes go on.
    let leader_id = eventually(Duration::from_secs(20), "leader", || {
        leader(&client, &nodes)
    })
    .await;
    let idx = nodes.iter().position(|n| n.id == leader_id).unwrap();
    nodes[idx].kill().await;
    let survivor = nodes.iter().find(|n| n.alive()).unwrap();
    eventually(
        Duration::from_secs(30),
        "a write after the kill",
        || async { (register(&client, survivor, "after-kill").await == Some(201)).then_some(()) },
    )
    .await;
    // Removing a member through the API shrinks the group.
    let before = mesh_status(&client, survivor).await.unwrap()["revision"]
        .as_u64()
        .unwrap();
    let r = client
        .delete(survivor.url(&paths::member(leader_id)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let s = mesh_status(&client, survivor).await.unwrap();
    assert_eq!(s["members"].as_array().unwrap().len(), 3);
    let r = client
        .delete(survivor.url(&paths::member(99)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Each change is in the audit log with who made it, and on the watch stream.
    let log = get_json(&client, &survivor.url(&paths::audit(0, 1000)))
        .await
        .unwrap();
    let mut rows: Vec<(String, String)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["what"].as_str().unwrap().contains("/federation/members"))
        .map(|r| {
            (
                r["who"].as_str().unwrap().into(),
                r["what"].as_str().unwrap().into(),
            )
        })
        .collect();
    // Forming the group added nodes 2 and 3 the same way.
    assert_eq!(rows.len(), 5, "{log}");
    let this_test = rows.split_off(2);
    let admin = |what: &str| ("admin-token".to_string(), what.to_string());
    assert_eq!(
        this_test,
        vec![
            admin("POST /api/v1/federation/members"),
            admin("POST /api/v1/federation/members"),
            admin(&format!("DELETE /api/v1/federation/members/{leader_id}")),
        ]
    );
    let line = first_line_of(&client, &survivor.api, before, "member.changed").await;
    assert_eq!(
        line["change"],
        json!({"change": "removed", "id": leader_id}),
        "{line}"
    );
}

/// The first line of type `kind` on the watch from revision `from` (bounded: 60 s).
async fn first_line_of(client: &reqwest::Client, api: &str, from: u64, kind: &str) -> Value {
    let mut found = None;
    follow(client, api, from, |v| {
        let hit = v["type"] == kind;
        if hit {
            found = Some(v);
        }
        hit
    })
    .await;
    found.unwrap_or_else(|| panic!("the watch ended without a {kind} line"))
}

/// Reads the watch from `api` after `from`, line by line, until `on_line` says stop or the
/// stream ends (the node died). Bounded by the request timeout.
async fn follow(
    client: &reqwest::Client,
    api: &str,
    from: u64,
    mut on_line: impl FnMut(Value) -> bool,
) {
    let Ok(resp) = client
        .get(format!("http://{api}{}", paths::watch(from)))
        .timeout(Duration::from_secs(60))
        .send()
        .await
    else {
        return;
    };
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.bytes_stream();
    let mut buf = Vec::new();
    while let Some(Ok(chunk)) = body.next().await {
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            if on_line(serde_json::from_slice(&line).expect("each line is JSON")) {
                return;
            }
        }
    }
}

type Seen = std::sync::Arc<std::sync::Mutex<Vec<(u64, String)>>>;

/// Reads one watch stream from `api` into `seen` until it holds `until_rev` or the stream
/// ends (the node died).
async fn read_watch(
    client: reqwest::Client,
    api: String,
    from: u64,
    until_rev: Option<u64>,
    seen: Seen,
) {
    follow(&client, &api, from, |v| {
        let mut seen = seen.lock().unwrap();
        if v["type"] == "cluster.put" {
            seen.push((
                v["revision"].as_u64().unwrap(),
                v["cluster"]["name"].as_str().unwrap().to_string(),
            ));
        }
        matches!((until_rev, seen.last()), (Some(want), Some(last)) if last.0 >= want)
    })
    .await;
}

/// A watcher on the leader loses its stream when the leader is killed, resumes on another
/// node from its last revision, and sees every change exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_across_leader_change() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = three_nodes(tmp.path()).await;
    let client = http();
    // Forming the group took revisions of its own (the members' additions).
    let start = converged(&client, &nodes, Duration::from_secs(20)).await;
    for i in 0..20 {
        assert_eq!(
            register(&client, &nodes[i % 3], &format!("a{i}")).await,
            Some(201)
        );
    }
    let leader_id = eventually(Duration::from_secs(20), "leader", || {
        leader(&client, &nodes)
    })
    .await;
    let idx = nodes.iter().position(|n| n.id == leader_id).unwrap();

    // Watch the leader from the start; kill it once the backlog has been read.
    let seen: Seen = Default::default();
    let watcher = tokio::spawn(read_watch(
        client.clone(),
        nodes[idx].api.clone(),
        0,
        None,
        seen.clone(),
    ));
    eventually(
        Duration::from_secs(20),
        "the watcher read the backlog",
        || async { (seen.lock().unwrap().len() >= 20).then_some(()) },
    )
    .await;
    nodes[idx].kill().await;
    watcher.await.unwrap();
    let last = seen.lock().unwrap().last().unwrap().0;

    // More writes under the new leader.
    let other = nodes.iter().find(|n| n.alive()).unwrap();
    eventually(
        Duration::from_secs(30),
        "first write under the new leader",
        || async { (register(&client, other, "b0").await == Some(201)).then_some(()) },
    )
    .await;
    for i in 1..20 {
        assert_eq!(register(&client, other, &format!("b{i}")).await, Some(201));
    }
    let final_rev = cluster_names(&client, other).await.unwrap().0;

    // Resume on the other surviving node from the last revision seen.
    let survivor = nodes.iter().rfind(|n| n.alive()).unwrap();
    read_watch(
        client.clone(),
        survivor.api.clone(),
        last,
        Some(final_rev),
        seen.clone(),
    )
    .await;

    let seen = seen.lock().unwrap().clone();
    let revs: Vec<u64> = seen.iter().map(|(r, _)| *r).collect();
    assert_eq!(
        revs,
        (start + 1..=final_rev).collect::<Vec<_>>(),
        "every revision exactly once, in order"
    );
    let names: BTreeSet<&str> = seen.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names.len(), 40);
}

/// A watch without `from_revision` starts now: a heartbeat at the current revision, then only
/// the changes after it (it used to replay from revision 0, and once the history had been
/// trimmed, answer 410 to every such watcher).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_without_a_revision_starts_now() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = three_nodes(tmp.path()).await;
    let client = http();
    for i in 0..5 {
        assert_eq!(
            register(&client, &nodes[0], &format!("old{i}")).await,
            Some(201)
        );
    }
    let now = cluster_names(&client, &nodes[0]).await.unwrap().0;
    let resp = client
        .get(nodes[0].url(paths::WATCH))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.bytes_stream();
    let mut buf = Vec::new();
    let mut lines: Vec<Value> = Vec::new();
    let mut wrote = false;
    while lines.iter().filter(|v| v["type"] == "cluster.put").count() < 1 {
        let chunk = tokio::time::timeout(Duration::from_secs(20), body.next())
            .await
            .expect("a line within 20 s")
            .expect("the stream goes on")
            .unwrap();
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            lines.push(serde_json::from_slice(&line).expect("each line is JSON"));
        }
        if !wrote && !lines.is_empty() {
            wrote = true;
            assert_eq!(register(&client, &nodes[0], "new").await, Some(201));
        }
    }
    assert_eq!(lines[0]["type"], "heartbeat", "{lines:?}");
    assert_eq!(lines[0]["revision"], now, "{lines:?}");
    let puts: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "cluster.put")
        .collect();
    assert_eq!(puts.len(), 1, "no older change is replayed: {lines:?}");
    assert_eq!(puts[0]["cluster"]["name"], "new");
    assert!(puts[0]["revision"].as_u64().unwrap() > now);
}
