//! A [`sqllogictest`] driver that talks to a server over the PostgreSQL wire protocol.
//!
//! Statements run with the simple query protocol, so values arrive in PostgreSQL's text format
//! exactly as psql would show them; NULL prints as `NULL` and the empty string as `(empty)`.
//! Result column types come from describing the statement with the extended protocol first
//! (only for statements that can return rows), and map to [`DefaultColumnType`]: integer types to
//! `I`, floating point and numeric types to `R`, everything else to `T`.
//!
//! Errors display as `SQLSTATE: message`, with detail and hint on following lines, so an
//! expectation such as `statement error 23505: duplicate key value` checks both the code and the
//! message; the bare `statement error (23505)` form also works.

use std::fmt;

use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use tokio_postgres::types::Type;
use tokio_postgres::SimpleQueryMessage;

/// An error from the server (with its SQLSTATE) or from the connection.
#[derive(Debug)]
pub struct DbError {
    /// The SQLSTATE code, when the server sent one.
    pub code: Option<String>,
    /// The primary message.
    pub message: String,
    /// The DETAIL and HINT fields, if any, formatted as lines.
    pub extra: String,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{code}: {}", self.message)?,
            None => write!(f, "{}", self.message)?,
        }
        if !self.extra.is_empty() {
            write!(f, "\n{}", self.extra)?;
        }
        Ok(())
    }
}

impl std::error::Error for DbError {}

impl From<tokio_postgres::Error> for DbError {
    fn from(err: tokio_postgres::Error) -> Self {
        match err.as_db_error() {
            Some(db) => {
                let mut extra = String::new();
                if let Some(detail) = db.detail() {
                    extra.push_str("DETAIL: ");
                    extra.push_str(detail);
                }
                if let Some(hint) = db.hint() {
                    if !extra.is_empty() {
                        extra.push('\n');
                    }
                    extra.push_str("HINT: ");
                    extra.push_str(hint);
                }
                DbError {
                    code: Some(db.code().code().to_string()),
                    message: db.message().to_string(),
                    extra,
                }
            }
            None => DbError {
                code: None,
                message: crate::error_chain(&err),
                extra: String::new(),
            },
        }
    }
}

impl From<crate::Error> for DbError {
    fn from(err: crate::Error) -> Self {
        DbError {
            code: None,
            message: err.to_string(),
            extra: String::new(),
        }
    }
}

/// Maps a PostgreSQL type to the sqllogictest column type letter.
pub fn column_type(ty: &Type) -> DefaultColumnType {
    match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => DefaultColumnType::Integer,
        Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC => DefaultColumnType::FloatingPoint,
        _ => DefaultColumnType::Text,
    }
}

/// Formats a text-format value the sqllogictest way: NULL as `NULL`, empty as `(empty)`.
pub fn format_value(value: Option<&str>) -> String {
    match value {
        None => "NULL".to_string(),
        Some("") => "(empty)".to_string(),
        Some(text) => text.to_string(),
    }
}

/// Returns whether `sql` is a statement that may return rows, judged by its first keyword or a
/// RETURNING clause. Only those are described first to learn their column types.
pub fn may_return_rows(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    // Skip leading comments and parentheses, as in `(SELECT 1) UNION (SELECT 2)`.
    loop {
        if let Some(r) = rest.strip_prefix("--") {
            rest = r
                .split_once('\n')
                .map_or("", |(_, after)| after)
                .trim_start();
        } else if let Some(r) = rest.strip_prefix('(') {
            rest = r.trim_start();
        } else {
            break;
        }
    }
    let first: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    matches!(
        first.as_str(),
        "SELECT" | "WITH" | "VALUES" | "SHOW" | "TABLE" | "EXPLAIN" | "FETCH"
    ) || sql.to_ascii_uppercase().contains("RETURNING")
}

/// A connection driving sqllogictest records over the PostgreSQL wire protocol.
pub struct PgDb {
    client: tokio_postgres::Client,
    engine: String,
}

impl PgDb {
    /// Connects to `config`. `engine` is the engine name the runner matches against `skipif` and
    /// `onlyif` (`reef` or `postgresql`).
    pub async fn connect(
        config: &tokio_postgres::Config,
        engine: impl Into<String>,
    ) -> Result<Self, DbError> {
        let client = crate::connect_config(config).await?;
        Ok(PgDb {
            client,
            engine: engine.into(),
        })
    }

    /// The underlying client.
    pub fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }
}

#[async_trait::async_trait]
impl AsyncDB for PgDb {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        // Describe first to learn the column types. If describing fails (say a multi-statement
        // string), the simple query below reports the real outcome and the types stay unknown.
        let described: Option<Vec<DefaultColumnType>> = if may_return_rows(sql) {
            match self.client.prepare(sql).await {
                Ok(statement) => Some(
                    statement
                        .columns()
                        .iter()
                        .map(|c| column_type(c.type_()))
                        .collect(),
                ),
                Err(_) => None,
            }
        } else {
            None
        };

        let messages = self.client.simple_query(sql).await?;
        let mut columns: Option<usize> = None;
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut count = 0u64;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(cols) => columns = Some(cols.len()),
                SimpleQueryMessage::Row(row) => {
                    columns.get_or_insert(row.len());
                    rows.push((0..row.len()).map(|i| format_value(row.get(i))).collect());
                }
                SimpleQueryMessage::CommandComplete(n) => count = n,
                _ => {}
            }
        }
        match columns {
            Some(n) => {
                let types = match described {
                    Some(types) if types.len() == n => types,
                    _ => vec![DefaultColumnType::Any; n],
                };
                Ok(DBOutput::Rows { types, rows })
            }
            None => Ok(DBOutput::StatementComplete(count)),
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        &self.engine
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }

    fn error_sql_state(err: &DbError) -> Option<String> {
        err.code.clone()
    }
}

/// The most failed records listed in a [`run_file`] report.
const MAX_REPORTED: usize = 20;

/// Runs every record of the `.slt` file at `path` against the server at `config`, continuing
/// after failures, with strict column type checks. `engine` (`reef` or `postgresql`) is the label
/// `skipif`/`onlyif` match. Returns a report listing the failed records.
pub async fn run_file(
    config: tokio_postgres::Config,
    engine: &'static str,
    path: &std::path::Path,
) -> Result<(), String> {
    use sqllogictest::{Record, Runner};

    let records = sqllogictest::parse_file::<DefaultColumnType>(path)
        .map_err(|e| format!("cannot parse {}: {e}", path.display()))?;
    let mut runner = Runner::new(move || {
        let config = config.clone();
        async move { PgDb::connect(&config, engine).await }
    });
    runner.add_label(engine);
    runner.with_column_validator(sqllogictest::strict_column_validator);

    let mut ran = 0usize;
    let mut failures: Vec<String> = Vec::new();
    for record in records {
        if let Record::Halt { .. } = record {
            break;
        }
        let counts = matches!(record, Record::Statement { .. } | Record::Query { .. });
        if let Err(e) = runner.run_async(record).await {
            failures.push(e.display(false).to_string());
        }
        if counts {
            ran += 1;
        }
    }
    runner.shutdown_async().await;
    if failures.is_empty() {
        return Ok(());
    }
    let mut report = format!(
        "{} of {ran} records failed in {}:\n",
        failures.len(),
        path.display()
    );
    for failure in failures.iter().take(MAX_REPORTED) {
        report.push_str(failure);
        report.push_str("\n\n");
    }
    if failures.len() > MAX_REPORTED {
        report.push_str(&format!("... and {} more\n", failures.len() - MAX_REPORTED));
    }
    Err(report)
}

/// Runs the `.slt` file at `path` like [`run_file`], in a database created for it on the server
/// at `admin_url` (and dropped afterwards), so files cannot see each other's tables.
pub async fn run_file_in_new_database(
    admin_url: &str,
    engine: &'static str,
    path: &std::path::Path,
) -> Result<(), String> {
    let admin_config: tokio_postgres::Config = admin_url
        .parse()
        .map_err(|e| format!("bad URL {admin_url}: {e}"))?;
    let admin = crate::connect_config(&admin_config)
        .await
        .map_err(|e| e.to_string())?;
    let stem: String = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let db = format!("slt_{stem}_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {db}"),
        format!("CREATE DATABASE {db}"),
    ] {
        admin
            .batch_execute(&sql)
            .await
            .map_err(|e| format!("cannot create database {db}: {}", DbError::from(e)))?;
    }
    let mut config = admin_config.clone();
    config.dbname(&db);
    let result = run_file(config, engine, path).await;
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_returning_statements_are_recognized() {
        assert!(may_return_rows("select 1"));
        assert!(may_return_rows("  -- note\n(SELECT 1) UNION (SELECT 2)"));
        assert!(may_return_rows("WITH x AS (SELECT 1) SELECT * FROM x"));
        assert!(may_return_rows("insert into t values (1) returning id"));
        assert!(may_return_rows("SHOW TimeZone"));
        assert!(!may_return_rows("INSERT INTO t VALUES (1)"));
        assert!(!may_return_rows("BEGIN"));
        assert!(!may_return_rows("CREATE TABLE selects (a int)"));
    }

    #[test]
    fn values_format_like_sqllogictest() {
        assert_eq!(format_value(None), "NULL");
        assert_eq!(format_value(Some("")), "(empty)");
        assert_eq!(format_value(Some("a b")), "a b");
    }

    #[test]
    fn types_map_to_letters() {
        assert_eq!(column_type(&Type::INT8), DefaultColumnType::Integer);
        assert_eq!(
            column_type(&Type::NUMERIC),
            DefaultColumnType::FloatingPoint
        );
        assert_eq!(column_type(&Type::BOOL), DefaultColumnType::Text);
        assert_eq!(column_type(&Type::TIMESTAMPTZ), DefaultColumnType::Text);
    }

    #[test]
    fn errors_display_code_then_message() {
        let err = DbError {
            code: Some("23505".into()),
            message: "duplicate key value violates unique constraint \"t_pkey\"".into(),
            extra: "DETAIL: Key (id)=(1) already exists.".into(),
        };
        assert_eq!(
            err.to_string(),
            "23505: duplicate key value violates unique constraint \"t_pkey\"\n\
             DETAIL: Key (id)=(1) already exists."
        );
    }
}
