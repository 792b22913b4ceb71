//! The operators' command line (`reef cluster ...`), run as the real binary against a real
//! cluster of four `reef start` processes: status shows every node and parses as JSON,
//! partitions show a table's ranges, a split adds a partition, a leader moves, a node is
//! drained and decommissioned (emptied) while a SQL workload on the other nodes keeps running
//! without an error, and mistakes get one clear line and a distinct exit code. Also: the system
//! views show the same, and `/metrics` serves Prometheus text that moves with the work.

mod common;

use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::SqlCluster;
use serde_json::Value as Json;

/// Runs `reef cluster --host HOST ARGS...`.
fn cli(host: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_reef"))
        .arg("cluster")
        .arg("--host")
        .arg(host)
        .args(args)
        .output()
        .expect("running reef")
}

fn ok(host: &str, args: &[&str]) -> String {
    let out = cli(host, args);
    assert!(
        out.status.success(),
        "reef cluster {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(host: &str, args: &[&str]) -> Json {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let text = ok(host, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
}

/// The node's replica count and state in `status --format json`.
fn node_of(status: &Json, id: u64) -> (u64, String) {
    let node = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .unwrap_or_else(|| panic!("no node {id} in {status}"));
    (
        node["replicas"].as_u64().unwrap(),
        node["state"].as_str().unwrap().to_string(),
    )
}

/// Waits until every partition of `events` has a known leader and exactly three voters (the
/// root service may be in the middle of a balancing move), and returns them.
fn settled_partitions(host: &str) -> Json {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let parts = json(host, &["partitions", "--table", "events"]);
        let settled = parts.as_array().unwrap().iter().all(|p| {
            let replicas = p["replicas"].as_array().unwrap();
            p["leader"].as_u64().is_some()
                && replicas.len() == 3
                && replicas.iter().all(|r| r["learner"] == false)
        });
        if settled {
            return parts;
        }
        assert!(Instant::now() < until, "partitions never settled: {parts}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn operators_see_and_change_the_cluster_from_the_command_line() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cluster = SqlCluster::start(4);
    let urls = cluster.urls();
    let host = format!("127.0.0.1:{}", cluster.grpc[1]);
    runtime.block_on(async {
        cluster.wait_replicated(2).await;
        let c = reef_testkit::connect(&urls[0]).await.unwrap();
        c.batch_execute(
            "CREATE TABLE events (id bigint PRIMARY KEY, body text); \
             INSERT INTO events SELECT g, 'x' FROM generate_series(1, 2000) g",
        )
        .await
        .unwrap();
    });

    // Status: every node, as a table and as JSON.
    let text = ok(&host, &["status"]);
    for port in &cluster.grpc {
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    }
    assert!(text.contains("health: ok"), "{text}");
    let status = json(&host, &["status"]);
    assert_eq!(status["nodes"].as_array().unwrap().len(), 4);
    assert_eq!(status["health"]["ok"], true, "{status}");
    for node in status["nodes"].as_array().unwrap() {
        assert_eq!(node["liveness"], "up");
        assert!(node["uptime_s"].as_u64().is_some(), "{node}");
        assert!(node["roles"].as_array().unwrap().contains(&"sql".into()));
    }

    // Partitions of one table, then a split of the one holding it.
    let parts = json(&host, &["partitions", "--table", "events"]);
    let parts = parts.as_array().unwrap();
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert!(
        parts[0]["start"].as_str().unwrap() == "metadata",
        "{parts:?}"
    );
    let id = parts[0]["id"].as_u64().unwrap();
    let before = json(&host, &["partitions"]).as_array().unwrap().len();
    let split = ok(&host, &["split", "--partition", &id.to_string()]);
    assert!(
        split.contains("events/primary"),
        "split at a row of events: {split}"
    );
    let after = json(&host, &["partitions"]).as_array().unwrap().len();
    assert_eq!(after, before + 1);
    let table = settled_partitions(&host);
    assert_eq!(table.as_array().unwrap().len(), 2, "{table}");

    // A leadership transfer.
    let part = &table.as_array().unwrap()[1];
    let pid = part["id"].as_u64().unwrap().to_string();
    let leader = part["leader"].as_u64().unwrap();
    let other = part["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["node"].as_u64().unwrap())
        .find(|n| *n != leader)
        .unwrap();
    ok(
        &host,
        &[
            "transfer-leader",
            "--partition",
            &pid,
            "--to",
            &other.to_string(),
        ],
    );

    // A replica moves to the node that holds none of this partition.
    let holders = |parts: &Json| -> Vec<u64> {
        parts
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"].as_u64().unwrap().to_string() == pid)
            .unwrap()["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["node"].as_u64().unwrap())
            .collect()
    };
    let before = holders(&settled_partitions(&host));
    let to = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_u64().unwrap())
        .find(|n| !before.contains(n))
        .unwrap();
    let from = before[0];
    let (from_arg, to_arg) = (from.to_string(), to.to_string());
    let move_args = [
        "move-replica",
        "--partition",
        &pid,
        "--from",
        &from_arg,
        "--to",
        &to_arg,
    ];
    ok(&host, &move_args);
    let moved = holders(&json(&host, &["partitions", "--table", "events"]));
    assert!(
        moved.contains(&to) && !moved.contains(&from),
        "{before:?} -> {moved:?}"
    );
    let to_itself = [
        "move-replica",
        "--partition",
        &pid,
        "--from",
        &to_arg,
        "--to",
        &to_arg,
    ];
    let out = cli(&host, &to_itself);
    assert_eq!(
        out.status.code(),
        Some(4),
        "a move to the same node is refused"
    );

    // Mistakes: one line, a distinct exit code.
    let out = cli(&host, &["split", "--partition", "424242"]);
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: no partition 424242"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let out = cli("127.0.0.1:1", &["status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the cluster"));

    // Leadership preferred on one node: every partition it holds a voter of, the root group
    // included, moves its leader there, and the command waits for that. Then it is dropped.
    let out = cli(&host, &["prefer-leaders", "99"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: no node 99"));
    let preferred = status["nodes"][1]["id"].as_u64().unwrap();
    let said = ok(&host, &["prefer-leaders", &preferred.to_string()]);
    assert!(said.contains("leading every partition"), "{said}");
    let text = ok(&host, &["status"]);
    assert!(
        text.contains(&format!("leaders preferred on: node(s) {preferred}")),
        "{text}"
    );
    let status = json(&host, &["status"]);
    assert_eq!(status["preferred_leaders"], serde_json::json!([preferred]));
    let all = json(&host, &["partitions"]);
    let mut led = 0;
    for p in all.as_array().unwrap() {
        let holds = p["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["node"] == preferred && r["learner"] == false);
        if holds {
            assert_eq!(p["leader"], preferred, "{p}");
            led += 1;
        }
        if p["id"] == reef_root::ROOT_PARTITION_ID && holds {
            assert_eq!(status["root_leader"], preferred, "{status}");
        }
    }
    assert!(led > 0, "{all}");
    let said = ok(&host, &["prefer-leaders", "--clear"]);
    assert!(said.contains("no leader preference"), "{said}");
    let status = json(&host, &["status"]);
    assert_eq!(status["preferred_leaders"], serde_json::json!([]));

    // Drain node 4, then decommission it while the other nodes keep writing.
    let victim = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_u64().unwrap())
        .max()
        .unwrap();
    let victim_url = cluster
        .nodes
        .iter()
        .zip(&cluster.grpc)
        .find(|(_, port)| {
            status["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["id"] == victim && n["address"] == format!("127.0.0.1:{port}"))
        })
        .map(|(n, _)| n.pg_url())
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (written, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let writers: Vec<_> = urls
        .iter()
        .filter(|u| **u != victim_url)
        .enumerate()
        .map(|(w, url)| {
            let (url, stop, written, failed) =
                (url.clone(), stop.clone(), written.clone(), failed.clone());
            runtime.spawn(async move {
                let c = reef_testkit::connect(&url).await.unwrap();
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let id = 1_000_000 * (w as u64 + 1) + i;
                    match c
                        .execute(&format!("INSERT INTO events VALUES ({id}, 'w')"), &[])
                        .await
                    {
                        Ok(_) => written.fetch_add(1, Ordering::SeqCst),
                        Err(e) => {
                            eprintln!("write on {url} failed: {}", reef_testkit::error_chain(&e));
                            failed.fetch_add(1, Ordering::SeqCst)
                        }
                    };
                }
            })
        })
        .collect();
    let drained = ok(&host, &["drain", &victim.to_string()]);
    assert!(drained.contains("leads no partition"), "{drained}");
    let started = Instant::now();
    let decommissioned = ok(&host, &["decommission", &victim.to_string()]);
    assert!(
        decommissioned.contains("holds no replicas"),
        "{decommissioned}"
    );
    let status = json(&host, &["status"]);
    assert_eq!(node_of(&status, victim), (0, "decommissioning".to_string()));
    eprintln!("decommission took {:?}", started.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    runtime.block_on(async {
        for w in writers {
            w.await.unwrap();
        }
    });
    assert!(written.load(Ordering::SeqCst) > 0);
    assert_eq!(failed.load(Ordering::SeqCst), 0, "writes failed meanwhile");
    // Every row is there, read on a node that stayed.
    let expected = 2000 + written.load(Ordering::SeqCst) as i64;
    runtime.block_on(async {
        let c = reef_testkit::connect(&urls[0]).await.unwrap();
        let row = c
            .query_one("SELECT count(*) FROM events", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), expected);
        // The system views agree with the command line.
        let row = c
            .query_one(
                "SELECT state, replicas FROM reef_catalog.nodes WHERE id = $1",
                &[&(victim as i64)],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "decommissioning");
        assert_eq!(row.get::<_, i64>(1), 0);
        let parts: i64 = c
            .query_one(
                "SELECT count(*) FROM reef_catalog.partitions WHERE start LIKE 'events/%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(parts, 1);
    });
    // With three active nodes left for three replicas, taking out another is refused up
    // front instead of hanging.
    let another = if victim == 1 { "2" } else { "1" };
    let out = cli(&host, &["decommission", another]);
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused") && err.contains("add a node"),
        "{err}"
    );
    assert_eq!(
        node_of(&json(&host, &["status"]), another.parse().unwrap()).1,
        "active"
    );
    // Recommissioned, it takes replicas again.
    ok(&host, &["recommission", &victim.to_string()]);
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (replicas, state) = node_of(&json(&host, &["status"]), victim);
        if replicas > 0 && state == "active" {
            break;
        }
        assert!(Instant::now() < until, "node {victim} got no replica back");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `GET /metrics` on a raw socket: (status line, body).
fn http_get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of the first sample of `name` whose labels contain `labels`.
fn sample(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name) && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.parse().unwrap())
        .unwrap_or(0.0)
}

#[test]
fn metrics_are_prometheus_text_that_moves_with_the_work() {
    let server = reef_testkit::TestServer::builder()
        .bin(env!("CARGO_BIN_EXE_reef"))
        .arg("--metrics-addr")
        .arg("127.0.0.1:0")
        .start()
        .unwrap();
    let addr = server
        .metrics_addr()
        .expect("the ready line names the metrics address");
    let (status, body) = http_get(&addr, "/healthz");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "ok\n");
    let (status, _) = http_get(&addr, "/nope");
    assert!(status.contains("404"), "{status}");

    let (status, before) = http_get(&addr, "/metrics");
    assert!(status.contains("200"), "{status}");
    // Every line is a comment (HELP, TYPE) or `name{labels} value` with a number.
    for line in before.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            assert!(
                rest.starts_with("HELP ") || rest.starts_with("TYPE "),
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(value.parse::<f64>().is_ok(), "not a number: {line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.is_empty(),
            "bad name: {line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')));
        }
    }
    for name in [
        "reef_node_up",
        "reef_replicas",
        "reef_leaders",
        "reef_raft_proposals_total",
    ] {
        assert!(
            before.contains(&format!("\n{name}")) || before.starts_with(name),
            "{name}"
        );
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = server.connect().await.unwrap();
        c.batch_execute("CREATE TABLE m (id int PRIMARY KEY)")
            .await
            .unwrap();
        for i in 0..20 {
            c.execute(&format!("INSERT INTO m VALUES ({i})"), &[])
                .await
                .unwrap();
        }
        c.query("SELECT * FROM m", &[]).await.unwrap();
    });
    let (_, after) = http_get(&addr, "/metrics");
    let commits = |text: &str| {
        sample(text, "reef_txn_commits_total", "one_phase")
            + sample(text, "reef_txn_commits_total", "two_phase")
    };
    assert!(commits(&after) >= commits(&before) + 20.0, "{after}");
    assert!(
        sample(&after, "reef_raft_entries_applied_total", "")
            > sample(&before, "reef_raft_entries_applied_total", "")
    );
    assert!(
        sample(
            &after,
            "reef_kv_request_duration_seconds_count",
            "method=\"get\""
        ) > sample(
            &before,
            "reef_kv_request_duration_seconds_count",
            "method=\"get\""
        )
    );
}

/// A transaction larger than its memory bound (`txn_spill_bytes`, set tiny here) spills its
/// writes to disk and still reads them, rewrites a table under them and commits them; after
/// `kill -9` the committed rows are all there, and those of a spilled transaction left open
/// are gone.
#[test]
fn large_transactions_spill_to_disk_and_survive_kill9() {
    let mut server = reef_testkit::TestServer::builder()
        .bin(env!("CARGO_BIN_EXE_reef"))
        .arg("--metrics-addr")
        .arg("127.0.0.1:0")
        .config("txn_spill_bytes = 4096\n")
        .start()
        .unwrap();
    let addr = server.metrics_addr().expect("a metrics address");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = server.connect().await.unwrap();
        c.batch_execute(
            "BEGIN;
             CREATE TABLE big (a bigint, b text);
             INSERT INTO big SELECT g, 'row' || g FROM generate_series(1, 3000) g;
             ALTER TABLE big ADD PRIMARY KEY (a);
             UPDATE big SET b = b || 'x';
             CREATE UNIQUE INDEX big_b ON big (b);",
        )
        .await
        .unwrap();
        // The transaction reads its own spilled rows through the new key and the new index.
        let row = c
            .query_one("SELECT a FROM big WHERE b = 'row2999x'", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 2999);
        c.batch_execute("COMMIT").await.unwrap();
    });
    let (_, metrics) = http_get(&addr, "/metrics");
    assert!(
        sample(&metrics, "reef_txn_spilled_bytes_total", "") > 100_000.0,
        "nothing spilled: {metrics}"
    );
    // A second spilled transaction is still open at the kill.
    let open = runtime.block_on(async {
        let c = server.connect().await.unwrap();
        c.batch_execute(
            "BEGIN; INSERT INTO big SELECT g, 'late' || g FROM generate_series(3001, 6000) g;",
        )
        .await
        .unwrap();
        c
    });
    server.kill9().unwrap();
    drop(open);
    server.restart().unwrap();
    runtime.block_on(async {
        let c = server.connect().await.unwrap();
        let row = c
            .query_one(
                "SELECT count(*), sum(a)::text, count(*) FILTER (WHERE b LIKE 'row%x') FROM big",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 3000);
        assert_eq!(row.get::<_, String>(1), "4501500");
        assert_eq!(row.get::<_, i64>(2), 3000);
        let dup = c
            .execute("INSERT INTO big VALUES (7000, 'row5x')", &[])
            .await
            .unwrap_err();
        assert_eq!(
            dup.code(),
            Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
        );
    });
}

/// A port `p` such that `p..p + n` are free now, avoiding `taken`.
fn free_ports(n: u16, taken: &[u16]) -> u16 {
    loop {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        if base.checked_add(n).is_none() || taken.iter().any(|t| t.abs_diff(base) < n + 3) {
            continue;
        }
        let free = (base..base + n).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            return base;
        }
    }
}

/// Runs `reef demo` until it prints its summary; returns the child and what it printed.
fn start_demo(dir: &std::path::Path, ports: [u16; 3]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reef"))
        .args(["demo", "--nodes", "3", "--data-dir"])
        .arg(dir)
        .args(["--pg-port", &ports[0].to_string()])
        .args(["--grpc-port", &ports[1].to_string()])
        .args(["--metrics-port", &ports[2].to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("press Ctrl-C") {
            // Keeps draining what it prints so that it never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (child, printed);
        }
    }
    panic!("reef demo ended before its summary: {printed}");
}

/// Stops the demo as Ctrl-C does; it stops its nodes and exits cleanly.
fn stop_demo(mut child: std::process::Child) {
    // SAFETY: kill(2) on a child this test spawned and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(status.success(), "reef demo exited with {status}");
}

#[test]
fn demo_starts_a_healthy_cluster_with_sample_data_and_restarts_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let pg = free_ports(3, &[]);
    let grpc = free_ports(3, &[pg]);
    let metrics = free_ports(3, &[pg, grpc]);
    let (child, printed) = start_demo(dir.path(), [pg, grpc, metrics]);
    assert!(printed.contains("health: ok"), "{printed}");
    for i in 0..3 {
        assert!(
            printed.contains(&format!("postgresql://reef@127.0.0.1:{}/reef", pg + i)),
            "{printed}"
        );
        assert!(
            printed.contains(&format!("127.0.0.1:{}", grpc + i)),
            "{printed}"
        );
        assert!(
            printed.contains(&format!("http://127.0.0.1:{}/metrics", metrics + i)),
            "{printed}"
        );
    }
    assert!(printed.contains("created sample tables"), "{printed}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let count = |port: u16| {
        runtime.block_on(async {
            let url = format!("postgresql://reef@127.0.0.1:{port}/reef");
            let c = reef_testkit::connect(&url).await.unwrap();
            c.query_one("SELECT count(*) FROM orders", &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        })
    };
    assert_eq!(count(pg + 2), 1000);
    runtime.block_on(async {
        let url = format!("postgresql://reef@127.0.0.1:{}/reef", pg + 1);
        let c = reef_testkit::connect(&url).await.unwrap();
        c.batch_execute("INSERT INTO orders (id, customer_id, amount) VALUES (5000, 1, 9.50)")
            .await
            .unwrap();
    });
    stop_demo(child);

    // The second run restarts the same three nodes on the same data.
    let (child, printed) = start_demo(dir.path(), [pg, grpc, metrics]);
    assert!(printed.contains("health: ok"), "{printed}");
    assert!(printed.contains("from an earlier run"), "{printed}");
    assert_eq!(count(pg), 1001);
    stop_demo(child);
}
