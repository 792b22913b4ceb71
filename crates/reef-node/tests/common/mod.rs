//! Helpers shared by the tests that run clusters of `reef start` processes: starting the
//! nodes as a user would (`--grpc-addr`, and `--join` for all but the first), waiting for
//! three replicas, and finding a table's keys for administrative requests.

#![allow(dead_code)]

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reef_client::{Client, RootClient};
use reef_sql::catalog::{self, Object};
use reef_testkit::TestServer;

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `reef start` on a fresh data directory with its gRPC address on `grpc`, joining the node
/// whose gRPC port is `join`, if any.
pub fn start_node(grpc: u16, join: Option<u16>) -> TestServer {
    let mut builder = TestServer::builder()
        .bin(env!("CARGO_BIN_EXE_reef"))
        .arg("--grpc-addr")
        .arg(format!("127.0.0.1:{grpc}"))
        .arg("--heartbeat-ms")
        .arg("200")
        .arg("--log")
        .arg("warn");
    if let Some(port) = join {
        builder = builder.arg("--join").arg(format!("127.0.0.1:{port}"));
    }
    builder.start().unwrap()
}

/// A cluster of `reef start` processes on loopback.
pub struct SqlCluster {
    /// The nodes, in the order they started (the first founded the cluster).
    pub nodes: Vec<TestServer>,
    /// Their gRPC ports.
    pub grpc: Vec<u16>,
    /// A client of the root service.
    pub roots: Arc<RootClient>,
    /// A routing client, for administrative requests (splits, leader moves).
    pub client: Arc<Client>,
}

impl SqlCluster {
    /// Starts `n` nodes: the first founds the cluster, the others join it.
    pub fn start(n: usize) -> SqlCluster {
        let grpc: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut nodes = vec![start_node(grpc[0], None)];
        for port in &grpc[1..] {
            nodes.push(start_node(*port, Some(grpc[0])));
        }
        let roots = Arc::new(RootClient::new(
            0,
            grpc.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
            Duration::from_secs(20),
        ));
        let client = Arc::new(Client::with_root(roots.clone(), Duration::from_secs(30)));
        SqlCluster {
            nodes,
            grpc,
            roots,
            client,
        }
    }

    /// The PostgreSQL URL of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.pg_url()).collect()
    }

    /// Waits until every partition has three voters and at least `partitions` exist; the
    /// root client learns the cluster id on the way.
    pub async fn wait_replicated(&self, partitions: usize) {
        let until = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(status) = self.roots.cluster().await {
                let replicated = status.partitions.iter().all(|p| {
                    p.partition
                        .as_ref()
                        .is_some_and(|p| p.replicas.iter().filter(|r| !r.learner).count() == 3)
                });
                if replicated && status.partitions.len() >= partitions {
                    return;
                }
            }
            assert!(
                Instant::now() < until,
                "the cluster did not reach three replicas"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The storage key of the row of table `table` whose one-column primary key is `pk`,
    /// read from the catalog the cluster stores.
    pub async fn row_key(&self, table: &str, pk: reef_sql::Value) -> Vec<u8> {
        let (start, end) = catalog::object_key_range();
        let ts = self.roots.tso(1).await.unwrap();
        let objects = self.client.scan(&start, &end, ts, 10_000).await.unwrap();
        let id = objects
            .iter()
            .find_map(|(_, raw)| match catalog::decode_object(raw).unwrap() {
                Object::Table(t) if t.name == table => Some(t.id),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no table {table} in the catalog"));
        let mut key = catalog::index_prefix(id, 0);
        reef_sql::codec::encode_key_value(&mut key, &pk);
        key
    }
}
