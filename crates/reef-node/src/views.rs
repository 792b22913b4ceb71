//! The system views (`reef_catalog.nodes`, `.partitions`, `.transactions`) over the cluster:
//! nodes and partitions as the root leader sees them, and this node's live transactions.

use std::sync::Arc;

use reef_client::{Client, RootClient};
use reef_sql::catalog::{self, Object};
use reef_sql::{SqlError, Value};
use tokio::runtime::Handle;

use crate::admin;

/// Fills the system views in for a node of a cluster.
pub struct ClusterViews {
    /// This node's id.
    pub node_id: u64,
    /// The root service.
    pub roots: Arc<RootClient>,
    /// A routing client, to read the catalog the cluster stores.
    pub client: Arc<Client>,
    /// The runtime the clients run on.
    pub runtime: Handle,
    /// Holds this node's transaction client, once its SQL layer runs.
    pub gc: Arc<crate::cluster::GcLink>,
}

fn unavailable(err: impl std::fmt::Display) -> SqlError {
    SqlError::new(
        "58000",
        format!("cannot ask the root service for the cluster's state: {err}"),
    )
}

fn int(v: u64) -> Value {
    Value::Int64(v as i64)
}

impl reef_sql::system::SystemViews for ClusterViews {
    fn rows(&self, name: &str) -> reef_sql::Result<Vec<Vec<Value>>> {
        let runtime = &self.runtime;
        match name {
            "nodes" => {
                let status =
                    reef_client::block_on(runtime, self.roots.cluster()).map_err(unavailable)?;
                Ok(status
                    .nodes
                    .iter()
                    .map(|n| {
                        let desc = n.node.clone().unwrap_or_default();
                        vec![
                            int(desc.id),
                            Value::Text(desc.addr.clone()),
                            if desc.pg_addr.is_empty() {
                                Value::Null
                            } else {
                                Value::Text(desc.pg_addr.clone())
                            },
                            Value::Text(admin::roles(&desc).join(",")),
                            Value::Text(if desc.state.is_empty() {
                                "active".into()
                            } else {
                                desc.state.clone()
                            }),
                            Value::Text(n.liveness.clone()),
                            admin::uptime_s(n).map_or(Value::Null, int),
                            int(n.replicas),
                            int(n.leaders),
                            int(n.disk_bytes),
                        ]
                    })
                    .collect())
            }
            "partitions" => {
                let status =
                    reef_client::block_on(runtime, self.roots.cluster()).map_err(unavailable)?;
                let (start, end) = catalog::object_key_range();
                let ts = reef_client::block_on(runtime, self.roots.tso(1)).map_err(unavailable)?;
                let objects =
                    reef_client::block_on(runtime, self.client.scan(&start, &end, ts, 100_000))
                        .map_err(unavailable)?;
                let tables = objects
                    .iter()
                    .filter_map(|(_, raw)| match catalog::decode_object(raw) {
                        Ok(Object::Table(t)) => Some((t.id, t)),
                        _ => None,
                    })
                    .collect();
                let mut rows: Vec<Vec<Value>> = status
                    .partitions
                    .iter()
                    .filter_map(|p| {
                        let part = p.partition.as_ref()?;
                        let epoch = part.epoch.unwrap_or_default();
                        let learners = part.replicas.iter().filter(|r| r.learner).count();
                        Some(vec![
                            int(part.id),
                            Value::Text(admin::hex(&part.start)),
                            Value::Text(admin::hex(&part.end)),
                            Value::Text(admin::describe_key(&part.start, &tables, false)),
                            Value::Text(admin::describe_key(&part.end, &tables, true)),
                            int(p.bytes),
                            if p.leader_node_id == 0 {
                                Value::Null
                            } else {
                                int(p.leader_node_id)
                            },
                            Value::Text(admin::replicas_text(p)),
                            int((part.replicas.len() - learners) as u64),
                            int(learners as u64),
                            int(epoch.conf_ver),
                            int(epoch.version),
                        ])
                    })
                    .collect();
                rows.sort_by(|a, b| match (&a[1], &b[1]) {
                    (Value::Text(x), Value::Text(y)) => x.cmp(y),
                    _ => std::cmp::Ordering::Equal,
                });
                Ok(rows)
            }
            "transactions" => {
                let Some(txns) = self.gc.txns.get() else {
                    return Ok(Vec::new());
                };
                let now = reef_txn::now_ms();
                Ok(txns
                    .live_start_timestamps()
                    .into_iter()
                    .map(|ts| {
                        let started_ms = reef_common::ts_physical_ms(ts);
                        vec![
                            int(self.node_id),
                            int(ts),
                            Value::TimestampTz(started_ms as i64 * 1000),
                            int(now.saturating_sub(started_ms)),
                        ]
                    })
                    .collect())
            }
            other => Err(reef_sql::system::undefined(other)),
        }
    }
}
