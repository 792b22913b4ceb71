//! System views: the cluster as SQL sees it, in the schema `reef_catalog`, so any PostgreSQL
//! client can look at nodes, partitions and transactions (`SELECT * FROM
//! reef_catalog.nodes`). The SQL layer knows the views' shapes; the node it runs in fills them
//! in through [`SystemViews`] (the SQL layer knows nothing of the cluster itself).

use crate::error::{sqlstate, Result, SqlError};
use crate::types::{DataType, Value};

/// The schema holding the system views.
pub const SCHEMA: &str = "reef_catalog";

/// A system view's name and columns.
pub struct ViewShape {
    /// The view's name inside [`SCHEMA`].
    pub name: &'static str,
    /// Its columns: name and type.
    pub columns: &'static [(&'static str, DataType)],
}

/// Every system view.
pub const VIEWS: &[ViewShape] = &[
    ViewShape {
        name: "nodes",
        columns: &[
            ("id", DataType::Int64),
            ("address", DataType::Text),
            ("sql_address", DataType::Text),
            ("roles", DataType::Text),
            ("state", DataType::Text),
            ("liveness", DataType::Text),
            ("uptime_s", DataType::Int64),
            ("replicas", DataType::Int64),
            ("leaders", DataType::Int64),
            ("disk_bytes", DataType::Int64),
        ],
    },
    ViewShape {
        name: "partitions",
        columns: &[
            ("id", DataType::Int64),
            ("start_key", DataType::Text),
            ("end_key", DataType::Text),
            ("start", DataType::Text),
            ("end", DataType::Text),
            ("bytes", DataType::Int64),
            ("leader", DataType::Int64),
            ("replicas", DataType::Text),
            ("voters", DataType::Int64),
            ("learners", DataType::Int64),
            ("conf_ver", DataType::Int64),
            ("version", DataType::Int64),
        ],
    },
    ViewShape {
        name: "transactions",
        columns: &[
            ("node", DataType::Int64),
            ("start_ts", DataType::Int64),
            ("started_at", DataType::TimestampTz),
            ("age_ms", DataType::Int64),
        ],
    },
];

/// Returns the system view `name` names, if it is one (`reef_catalog.<view>`).
pub fn find(schema: &str, name: &str) -> Option<&'static ViewShape> {
    (schema == SCHEMA)
        .then(|| VIEWS.iter().find(|v| v.name == name))
        .flatten()
}

/// Fills the system views in: implemented by the node the SQL layer runs in.
pub trait SystemViews: Send + Sync {
    /// The rows of view `name`, one value per column of its [`ViewShape`].
    fn rows(&self, name: &str) -> Result<Vec<Vec<Value>>>;
}

/// System views for a SQL layer that runs over no cluster (tests, embedding): every view is
/// empty.
pub struct NoCluster;

impl SystemViews for NoCluster {
    fn rows(&self, _name: &str) -> Result<Vec<Vec<Value>>> {
        Ok(Vec::new())
    }
}

/// The error for a name in `reef_catalog` that is no view.
pub fn undefined(name: &str) -> SqlError {
    SqlError::new(
        sqlstate::UNDEFINED_TABLE,
        format!("relation \"{SCHEMA}.{name}\" does not exist"),
    )
    .with_hint(format!(
        "The system views are {}.",
        VIEWS
            .iter()
            .map(|v| format!("{SCHEMA}.{}", v.name))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
