//! The node's HTTP endpoint for operators: `/metrics` in Prometheus' text format (the
//! process's counters and histograms from `reef_common::metrics`, and gauges read when scraped:
//! replicas and leaders, RocksDB's sizes), and `/healthz` (200 while the node serves).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use reef_common::metrics::gauge_text;
use reef_raft::{Router, StateRole};
use reef_storage::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// RocksDB properties exported as gauges: (property, metric, help).
const ROCKSDB_GAUGES: &[(&str, &str, &str)] = &[
    (
        "rocksdb.cur-size-all-mem-tables",
        "reef_rocksdb_memtable_bytes",
        "Bytes held in RocksDB memtables.",
    ),
    (
        "rocksdb.estimate-live-data-size",
        "reef_rocksdb_live_data_bytes",
        "RocksDB's estimate of the live data on disk, in bytes.",
    ),
    (
        "rocksdb.total-sst-files-size",
        "reef_rocksdb_sst_bytes",
        "Bytes of RocksDB's SST files.",
    ),
    (
        "rocksdb.estimate-pending-compaction-bytes",
        "reef_rocksdb_pending_compaction_bytes",
        "Bytes RocksDB estimates compaction still has to rewrite.",
    ),
    (
        "rocksdb.estimate-num-keys",
        "reef_rocksdb_keys",
        "RocksDB's estimate of the keys it holds.",
    ),
];

/// What `/metrics` reads besides the process's counters.
#[derive(Clone)]
pub struct Sources {
    /// The node's replication threads.
    pub router: Router,
    /// The node's storage engine.
    pub engine: Arc<dyn Engine>,
    /// The node's id.
    pub node_id: u64,
}

impl Sources {
    /// Renders every metric.
    pub fn render(&self) -> String {
        let mut out = reef_common::metrics::registry().render();
        let node = self.node_id.to_string();
        let node_label: &[(&str, &str)] = &[("node", &node)];
        out.push_str(&gauge_text(
            "reef_node_up",
            "1 while the node serves.",
            &[(node_label, 1.0)],
        ));
        if let Ok(status) = self.router.status() {
            let replicas = status.iter().filter(|s| s.partition.is_some()).count();
            let leaders = status
                .iter()
                .filter(|s| s.role == StateRole::Leader)
                .count();
            out.push_str(&gauge_text(
                "reef_replicas",
                "Partition replicas this node holds.",
                &[(node_label, replicas as f64)],
            ));
            out.push_str(&gauge_text(
                "reef_leaders",
                "Partitions this node leads.",
                &[(node_label, leaders as f64)],
            ));
        }
        for (property, name, help) in ROCKSDB_GAUGES {
            if let Some(value) = self.engine.property(property) {
                out.push_str(&gauge_text(name, help, &[(node_label, value as f64)]));
            }
        }
        out
    }
}

/// Serves `/metrics` and `/healthz` on `listener` until the task is dropped.
/// A connection gets this long for its request and our answer, so idle or slow clients
/// cannot hold connections open.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many connections are answered at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 64;

/// Serves `/metrics` and `/healthz` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, sources: Sources) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors, typically: wait rather than spin.
                tracing::warn!(%err, "the metrics server cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let sources = sources.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, answer(&mut stream, &sources)).await;
            drop(slot);
        });
    }
}

/// Answers one HTTP/1.1 request and closes the connection.
async fn answer(stream: &mut tokio::net::TcpStream, sources: &Sources) -> Result<()> {
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    // The request line and headers; bodies are not expected.
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        let n = stream.read(&mut buf).await.context("reading a request")?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&request);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => {
            let sources = sources.clone();
            let body = tokio::task::spawn_blocking(move || sources.render())
                .await
                .unwrap_or_default();
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body)
        }
        ("GET", "/healthz") => ("200 OK", "text/plain; charset=utf-8", "ok\n".to_string()),
        ("GET", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: try /metrics or /healthz\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".to_string(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}
