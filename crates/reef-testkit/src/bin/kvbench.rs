//! Replication benchmark: starts `reef store` processes on loopback, drives concurrent write
//! transactions (prewrite + commit of one fresh key each, i.e. two Raft proposals) through the
//! partition leader over gRPC, and reports throughput and latency. With `--partitions N`, the
//! key space is first split into N partitions and the clients spread over them, which lets the
//! nodes' replication threads (`--raft-threads`) share the load. With `--failover`, it then
//! kills the leader with SIGKILL several times and reports the time from each kill to the next
//! acknowledged write.
//!
//! ```text
//! reef-kvbench --reef target/release/reef --replicas 3 --clients 16 --duration 20 --failover
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use reef_rpc::pb;
use reef_rpc::pb::kv_client::KvClient;
use reef_testkit::store_cluster::{put_commit, put_prewrite, StoreCluster, CLUSTER_ID};

#[derive(Parser)]
struct Args {
    /// The reef binary.
    #[arg(long)]
    reef: PathBuf,
    /// Replicas of the partition (1 or 3).
    #[arg(long, default_value_t = 3)]
    replicas: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    clients: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Milliseconds between Raft ticks.
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
    /// Partitions the clients' keys are split into (each client writes to one).
    #[arg(long, default_value_t = 1)]
    partitions: u64,
    /// Replication threads per node.
    #[arg(long, default_value_t = 2)]
    raft_threads: u64,
    /// Measure leader failover afterwards (needs 3 replicas).
    #[arg(long)]
    failover: bool,
}

/// The key prefix of one client.
fn client_prefix(client: u64) -> String {
    format!("bench/{client:04}/")
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(err) = runtime.block_on(run(args)) {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), reef_testkit::Error> {
    let threads = args.raft_threads.to_string();
    let mut cluster = StoreCluster::start_with(
        &args.reef,
        args.replicas,
        args.replicas,
        args.tick_ms,
        &["--raft-threads", &threads],
    )?;
    cluster.leader(Duration::from_secs(30)).await?;
    let partitions = args.partitions.clamp(1, args.clients);
    for k in 1..partitions {
        let first_client = k * args.clients / partitions;
        cluster
            .split(client_prefix(first_client).as_bytes())
            .await?;
    }
    // Each client writes through the leader of the partition holding its keys.
    let mut routes = Vec::new();
    for client in 0..args.clients {
        let (leader, partition) = cluster
            .leader_for(client_prefix(client).as_bytes(), Duration::from_secs(30))
            .await?;
        let ctx = pb::Context {
            cluster_id: CLUSTER_ID,
            node_id: cluster.nodes[leader].id,
            partition_id: partition.id,
            epoch: partition.epoch,
        };
        routes.push((format!("http://{}", cluster.nodes[leader].addr), ctx));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let value = bytes::Bytes::from(vec![b'v'; args.value_size]);
    let mut tasks = Vec::new();
    let started = Instant::now();
    for client in 0..args.clients {
        let (url, ctx) = routes[client as usize].clone();
        let (stop, errors, value) = (stop.clone(), errors.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            let mut kv = KvClient::connect(url).await.expect("connect to the leader");
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key: bytes::Bytes = format!("{}{n:010}", client_prefix(client)).into_bytes().into();
                let start_ts = 1_000_000 + (n * args.clients + client) * 4;
                n += 1;
                let t = Instant::now();
                let prewrite = kv
                    .prewrite(put_prewrite(ctx, key.clone(), value.clone(), start_ts, 10_000))
                    .await;
                let ok = matches!(&prewrite, Ok(r) if r.get_ref().partition_error.is_none() && r.get_ref().key_error.is_none());
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let commit = kv.commit(put_commit(ctx, key, start_ts)).await;
                let ok = matches!(&commit, Ok(r) if r.get_ref().partition_error.is_none() && r.get_ref().key_error.is_none());
                if ok {
                    latencies.push(t.elapsed());
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "replicas={} partitions={} raft-threads={} clients={} duration={:.1}s txns={} txn/s={:.0} proposals/s={:.0} p50={:.2}ms p99={:.2}ms errors={}",
        args.replicas,
        partitions,
        args.raft_threads,
        args.clients,
        elapsed,
        latencies.len(),
        latencies.len() as f64 / elapsed,
        2.0 * latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        errors.load(Ordering::Relaxed)
    );
    if args.failover && args.replicas >= 3 {
        let mut times = Vec::new();
        for round in 0..3u64 {
            let key = format!("failover/{round}").into_bytes();
            let (leader, _) = cluster.leader_for(&key, Duration::from_secs(30)).await?;
            cluster.kill(leader)?;
            let killed_at = Instant::now();
            cluster.write(&key, b"x", 900_000_000 + round * 10).await?;
            let took = killed_at.elapsed();
            println!("failover round {round}: first acknowledged write {:.0} ms after SIGKILL of the leader", took.as_secs_f64() * 1000.0);
            times.push(took);
            cluster.spawn(leader)?;
            let until = Instant::now() + Duration::from_secs(30);
            loop {
                let (now_leader, _) = cluster.leader(Duration::from_secs(10)).await?;
                let target = cluster.applied(now_leader).await?;
                if cluster.applied(leader).await.unwrap_or(0) >= target {
                    break;
                }
                if Instant::now() > until {
                    return Err(reef_testkit::Error::Cluster(
                        "restarted node did not catch up".into(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        times.sort();
        println!(
            "failover: median {:.0} ms, max {:.0} ms over {} kills (tick {} ms, election timeout 10-20 ticks)",
            times[times.len() / 2].as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0,
            times.len(),
            args.tick_ms
        );
    }
    cluster.stop_all()?;
    Ok(())
}
