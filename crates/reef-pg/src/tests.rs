//! Protocol tests against a scripted SQL engine.
//!
//! The real engine is not wired in yet, so these tests drive the whole front end (startup,
//! simple and extended protocols, portals, formats, errors, robustness) with real clients
//! (tokio-postgres and a raw socket) against a small engine that understands a handful of
//! commands:
//!
//! * `begin`, `commit`, `rollback`: transaction status changes.
//! * `rows N`: N rows of one int4 column `n` (1..=N).
//! * `echo` (prepared only): one row that returns the bound parameters, typed as declared.
//! * `fail`: a 22012 error with detail and hint; `fail_exec` (prepared) fails at Execute.
//! * `set app X`: changes the reported `application_name`.
//! * `sleep MS`: blocks the session for MS milliseconds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use reef_sql::{
    sqlstate, Column, DataType, Decimal, ExecResult, Result, SqlError, TxnStatus, Value,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::backend::{Described, SqlDatabase, SqlSession};
use crate::{serve_with, PgConfig};

#[derive(Clone, Default)]
struct FakeDb {
    dropped: Arc<AtomicUsize>,
}

struct FakeSession {
    dropped: Arc<AtomicUsize>,
    status: TxnStatus,
    app: String,
    cancel: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for FakeSession {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

struct FakeStmt {
    command: String,
    columns: Option<Vec<Column>>,
}

fn col(name: &str, data_type: DataType) -> Column {
    Column {
        name: name.into(),
        data_type,
    }
}

impl SqlDatabase for FakeDb {
    type Session = FakeSession;

    fn role(&self, user: &str) -> Result<Option<reef_sql::role::RoleDesc>> {
        // Every user exists, without a password.
        Ok(Some(reef_sql::role::RoleDesc {
            name: user.into(),
            ..reef_sql::role::RoleDesc::bootstrap()
        }))
    }

    fn session(&self, _user: &str, database: &str) -> Result<FakeSession> {
        if database != "reef" {
            return Err(SqlError::new(
                sqlstate::UNDEFINED_DATABASE,
                format!("database \"{database}\" does not exist"),
            ));
        }
        Ok(FakeSession {
            dropped: self.dropped.clone(),
            status: TxnStatus::Idle,
            app: String::new(),
            cancel: Default::default(),
        })
    }
}

impl FakeSession {
    fn run(&mut self, command: &str) -> Result<ExecResult> {
        let lower = command.to_ascii_lowercase();
        let words: Vec<&str> = lower.split_whitespace().collect();
        let done = |tag: &str| {
            Ok(ExecResult {
                copy: None,
                tag: tag.into(),
                columns: None,
                rows: vec![],
            })
        };
        if self.status == TxnStatus::Failed && !matches!(words[..], ["rollback"] | ["commit"]) {
            return Err(SqlError::new(
                sqlstate::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted",
            ));
        }
        match words[..] {
            ["begin"] | ["start", "transaction"] => {
                self.status = TxnStatus::InBlock;
                done("BEGIN")
            }
            ["commit"] | ["rollback"] => {
                self.status = TxnStatus::Idle;
                done(if words[0] == "commit" {
                    "COMMIT"
                } else {
                    "ROLLBACK"
                })
            }
            ["rows", n] => {
                let n: i32 = n
                    .parse()
                    .map_err(|_| SqlError::new(sqlstate::SYNTAX_ERROR, "bad count"))?;
                Ok(ExecResult {
                    copy: None,
                    tag: format!("SELECT {n}"),
                    columns: Some(vec![col("n", DataType::Int32)]),
                    rows: (1..=n).map(|i| vec![Value::Int32(i)]).collect(),
                })
            }
            ["fail"] => {
                if self.status == TxnStatus::InBlock {
                    self.status = TxnStatus::Failed;
                }
                Err(SqlError::division_by_zero()
                    .with_detail("some detail")
                    .with_hint("some hint"))
            }
            // Startup parameters (tokio-postgres sends client_encoding and friends).
            ["set", _, "=", _, ..] => done("SET"),
            ["set", "app", name] => {
                self.app = name.into();
                done("SET")
            }
            ["sleep", ms] => {
                std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0)));
                done("SLEEP")
            }
            _ => Err(SqlError::new(
                sqlstate::SYNTAX_ERROR,
                format!("syntax error in \"{command}\""),
            )),
        }
    }
}

impl SqlSession for FakeSession {
    type Statement = FakeStmt;

    fn execute_simple(&mut self, sql: &str) -> Vec<Result<ExecResult>> {
        let mut out = Vec::new();
        for command in sql.split(';').map(str::trim).filter(|c| !c.is_empty()) {
            let result = self.run(command);
            let failed = result.is_err();
            out.push(result);
            if failed {
                break;
            }
        }
        out
    }

    fn prepare(&mut self, sql: &str, declared: &[Option<DataType>]) -> Result<Described<FakeStmt>> {
        let sql = sql.trim().to_ascii_lowercase();
        let sql = sql.as_str();
        let (param_types, columns) = match sql {
            "echo" => {
                let types: Vec<DataType> = declared
                    .iter()
                    .map(|t| t.unwrap_or(DataType::Unknown))
                    .collect();
                let columns = types
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        col(
                            &format!("c{}", i + 1),
                            if *t == DataType::Unknown {
                                DataType::Text
                            } else {
                                *t
                            },
                        )
                    })
                    .collect();
                (types, Some(columns))
            }
            "fail" => return Err(SqlError::new(sqlstate::SYNTAX_ERROR, "cannot prepare")),
            "fail_exec" | "begin" | "commit" | "rollback" => (vec![], None),
            s if s.starts_with("rows ") => (vec![], Some(vec![col("n", DataType::Int32)])),
            _ => return Err(SqlError::new(sqlstate::SYNTAX_ERROR, "unknown statement")),
        };
        Ok(Described {
            handle: FakeStmt {
                command: sql.into(),
                columns: columns.clone(),
            },
            param_types,
            columns,
        })
    }

    fn execute_prepared(&mut self, stmt: &FakeStmt, params: &[Value]) -> Result<ExecResult> {
        match stmt.command.as_str() {
            "echo" => Ok(ExecResult {
                copy: None,
                tag: "SELECT 1".into(),
                columns: stmt.columns.clone(),
                rows: vec![params.to_vec()],
            }),
            "fail_exec" => Err(SqlError::unsupported("fails at execute")),
            other => self.run(other),
        }
    }

    fn resume(&mut self) -> Vec<Result<ExecResult>> {
        Vec::new()
    }

    fn copy_data(&mut self, _data: &[u8]) -> Result<()> {
        Err(SqlError::unsupported("the fake engine has no COPY"))
    }

    fn copy_done(&mut self) -> Result<ExecResult> {
        Err(SqlError::unsupported("the fake engine has no COPY"))
    }

    fn copy_fail(&mut self, message: &str) -> SqlError {
        SqlError::new(sqlstate::QUERY_CANCELED, message)
    }

    fn cancel_flag(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.cancel.clone()
    }

    fn txn_status(&self) -> TxnStatus {
        self.status
    }

    fn parameter_status(&self) -> Vec<(String, String)> {
        vec![
            ("server_version".into(), "15.0 (reefdb 0.1.0)".into()),
            ("server_encoding".into(), "UTF8".into()),
            ("client_encoding".into(), "UTF8".into()),
            ("DateStyle".into(), "ISO, MDY".into()),
            ("integer_datetimes".into(), "on".into()),
            ("application_name".into(), self.app.clone()),
        ]
    }
}

struct TestServer {
    addr: std::net::SocketAddr,
    db: FakeDb,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::result::Result<(), crate::PgError>>,
}

async fn start(config: PgConfig) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let db = FakeDb::default();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(serve_with(db.clone(), listener, config, async {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        db,
        stop: Some(tx),
        task,
    }
}

async fn client(server: &TestServer) -> Client {
    let conn_str = format!(
        "host=127.0.0.1 port={} user=tester dbname=reef",
        server.addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&conn_str, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// A raw protocol client for byte-level tests.
struct Raw {
    s: TcpStream,
}

impl Raw {
    async fn connect(server: &TestServer) -> Raw {
        Raw {
            s: TcpStream::connect(server.addr).await.unwrap(),
        }
    }

    async fn startup(server: &TestServer) -> (Raw, Vec<(u8, Vec<u8>)>) {
        let mut raw = Raw::connect(server).await;
        raw.send_startup(&[("user", "raw"), ("database", "reef")])
            .await;
        let msgs = raw.until_ready().await;
        (raw, msgs)
    }

    async fn send_startup(&mut self, params: &[(&str, &str)]) {
        let mut body = 196_608i32.to_be_bytes().to_vec();
        for (k, v) in params {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        packet.extend_from_slice(&body);
        self.s.write_all(&packet).await.unwrap();
    }

    async fn send(&mut self, ty: u8, body: &[u8]) {
        let mut packet = vec![ty];
        packet.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        packet.extend_from_slice(body);
        self.s.write_all(&packet).await.unwrap();
    }

    /// Reads one backend message; None on EOF or reset.
    async fn read(&mut self) -> Option<(u8, Vec<u8>)> {
        let read = async {
            let mut head = [0u8; 5];
            self.s.read_exact(&mut head).await.ok()?;
            let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut body = vec![0; len - 4];
            self.s.read_exact(&mut body).await.ok()?;
            Some((head[0], body))
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("server did not answer")
    }

    async fn until_ready(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            let msg = self
                .read()
                .await
                .expect("connection closed before ReadyForQuery");
            let ready = msg.0 == b'Z';
            out.push(msg);
            if ready {
                return out;
            }
        }
    }

    /// Reads until the server closes the connection, returning what arrived.
    async fn until_closed(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(msg) = self.read().await {
            out.push(msg);
        }
        out
    }
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn types(msgs: &[(u8, Vec<u8>)]) -> String {
    msgs.iter().map(|(t, _)| *t as char).collect()
}

/// The SQLSTATE of an ErrorResponse body.
fn error_code(body: &[u8]) -> String {
    let mut fields = body.split(|b| *b == 0);
    fields
        .find(|f| f.first() == Some(&b'C'))
        .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
        .unwrap_or_default()
}

async fn wait_for_drops(db: &FakeDb, n: usize) {
    for _ in 0..200 {
        if db.dropped.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "expected {n} dropped sessions, saw {}",
        db.dropped.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn startup_sends_parameters_key_and_ready() {
    let server = start(PgConfig::default()).await;
    let (_raw, msgs) = Raw::startup(&server).await;
    assert_eq!(types(&msgs), "RSSSSSSKZ");
    assert_eq!(msgs[0].1, 0i32.to_be_bytes());
    assert!(msgs
        .iter()
        .any(|(t, b)| *t == b'S' && b.starts_with(b"server_version\x0015.0 (reefdb")));
    assert_eq!(msgs.last().unwrap().1, b"I");
}

#[tokio::test]
async fn ssl_request_is_refused_and_startup_continues() {
    let server = start(PgConfig::default()).await;
    let mut raw = Raw::connect(&server).await;
    raw.s
        .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .await
        .unwrap();
    let mut answer = [0u8; 1];
    raw.s.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"N");
    raw.send_startup(&[("user", "raw")]).await;
    let msgs = raw.until_ready().await;
    assert_eq!(msgs[0].0, b'R');
}

#[tokio::test]
async fn unknown_database_is_rejected_with_its_sqlstate() {
    let server = start(PgConfig::default()).await;
    let conn_str = format!(
        "host=127.0.0.1 port={} user=x dbname=nope",
        server.addr.port()
    );
    let err = tokio_postgres::connect(&conn_str, NoTls)
        .await
        .err()
        .expect("connect must fail");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME)
    );
}

#[tokio::test]
async fn simple_query_rows_tags_and_errors() {
    let server = start(PgConfig::default()).await;
    let client = client(&server).await;
    let msgs = client.simple_query("rows 3; begin").await.unwrap();
    let values: Vec<String> = msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(values, ["1", "2", "3"]);
    let tags: Vec<u64> = msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(tags, [3, 0]);

    let err = client.simple_query("fail").await.unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "22012");
    assert_eq!(db.message(), "division by zero");
    assert_eq!(db.detail(), Some("some detail"));
    assert_eq!(db.hint(), Some("some hint"));
    // The transaction block is now failed; rollback recovers.
    let err = client.simple_query("rows 1").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "25P02");
    client.simple_query("rollback").await.unwrap();
    assert_eq!(client.simple_query("rows 1").await.unwrap().len(), 3);
}

#[tokio::test]
async fn ready_for_query_reports_transaction_status_and_settings() {
    let server = start(PgConfig::default()).await;
    let (mut raw, _) = Raw::startup(&server).await;
    raw.send(b'Q', &cstr("begin")).await;
    let msgs = raw.until_ready().await;
    assert_eq!(types(&msgs), "CZ");
    assert_eq!(msgs[1].1, b"T");
    raw.send(b'Q', &cstr("fail")).await;
    let msgs = raw.until_ready().await;
    assert_eq!(types(&msgs), "EZ");
    assert_eq!(msgs[1].1, b"E");
    raw.send(b'Q', &cstr("rollback; set app psql")).await;
    let msgs = raw.until_ready().await;
    assert_eq!(types(&msgs), "CCSZ");
    assert_eq!(msgs[2].1, b"application_name\0psql\0");
    assert_eq!(msgs[3].1, b"I");
    raw.send(b'Q', &cstr("  ")).await;
    assert_eq!(types(&raw.until_ready().await), "IZ");
}

#[tokio::test]
async fn binary_round_trip_of_every_type() {
    let server = start(PgConfig::default()).await;
    let client = client(&server).await;
    let param_types = [
        Type::BOOL,
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::NUMERIC,
        Type::TEXT,
        Type::VARCHAR,
        Type::BYTEA,
        Type::DATE,
        Type::TIMESTAMP,
        Type::TIMESTAMPTZ,
        Type::INTERVAL,
    ];
    let stmt = client.prepare_typed("echo", &param_types).await.unwrap();
    assert_eq!(stmt.params(), &param_types);
    assert_eq!(
        stmt.columns()
            .iter()
            .map(|c| c.type_().clone())
            .collect::<Vec<_>>(),
        param_types
    );

    let numeric: Decimal = "-12345.678900".parse().unwrap();
    let date = NaiveDate::from_ymd_opt(1999, 12, 31).unwrap();
    let ts: NaiveDateTime = NaiveDate::from_ymd_opt(2024, 2, 29)
        .unwrap()
        .and_hms_micro_opt(13, 14, 15, 123_456)
        .unwrap();
    let tstz: DateTime<Utc> = DateTime::from_timestamp(-1_000_000, 5_000).unwrap();
    let interval = PgInterval {
        micros: -3_600_000_001,
        days: 40,
        months: -13,
    };
    let row = client
        .query_one(
            &stmt,
            &[
                &true,
                &-7i16,
                &i32::MIN,
                &i64::MAX,
                &1.5f32,
                &-2.25e300f64,
                &numeric,
                &"héllo",
                &"varchar",
                &vec![0u8, 1, 255],
                &date,
                &ts,
                &tstz,
                &interval,
            ],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, i16>(1), -7);
    assert_eq!(row.get::<_, i32>(2), i32::MIN);
    assert_eq!(row.get::<_, i64>(3), i64::MAX);
    assert_eq!(row.get::<_, f32>(4), 1.5);
    assert_eq!(row.get::<_, f64>(5), -2.25e300);
    let back: Decimal = row.get(6);
    assert_eq!(back, numeric);
    assert_eq!(back.scale(), 6);
    assert_eq!(row.get::<_, &str>(7), "héllo");
    assert_eq!(row.get::<_, &str>(8), "varchar");
    assert_eq!(row.get::<_, Vec<u8>>(9), vec![0u8, 1, 255]);
    assert_eq!(row.get::<_, NaiveDate>(10), date);
    assert_eq!(row.get::<_, NaiveDateTime>(11), ts);
    assert_eq!(row.get::<_, DateTime<Utc>>(12), tstz);
    assert_eq!(row.get::<_, PgInterval>(13), interval);

    // NULLs in both directions.
    let stmt = client
        .prepare_typed("echo", &[Type::INT4, Type::TEXT])
        .await
        .unwrap();
    let row = client
        .query_one(&stmt, &[&None::<i32>, &None::<&str>])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<i32>>(0), None);
    assert_eq!(row.get::<_, Option<&str>>(1), None);
}

#[tokio::test]
async fn unconstrained_parameters_are_described_as_text() {
    let server = start(PgConfig::default()).await;
    let client = client(&server).await;
    let stmt = client.prepare("echo").await.unwrap();
    assert_eq!(stmt.params(), &[] as &[Type]);
    let stmt = client
        .prepare_typed("echo", &[Type::UNKNOWN])
        .await
        .unwrap();
    assert_eq!(stmt.params(), &[Type::TEXT]);
    let row = client.query_one(&stmt, &[&"free text"]).await.unwrap();
    assert_eq!(row.get::<_, &str>(0), "free text");
}

#[tokio::test]
async fn text_format_parameters_and_results() {
    let server = start(PgConfig::default()).await;
    let (mut raw, _) = Raw::startup(&server).await;
    // Parse "echo" with int8 and unknown parameters.
    let mut parse = cstr("s1");
    parse.extend(cstr("echo"));
    parse.extend(2i16.to_be_bytes());
    parse.extend(20u32.to_be_bytes());
    parse.extend(0u32.to_be_bytes());
    raw.send(b'P', &parse).await;
    // Bind: all parameters in text; results text then binary.
    let mut bind = cstr("");
    bind.extend(cstr("s1"));
    bind.extend(0i16.to_be_bytes());
    bind.extend(2i16.to_be_bytes());
    bind.extend(3i32.to_be_bytes());
    bind.extend(b"-42");
    bind.extend(2i32.to_be_bytes());
    bind.extend(b"hi");
    bind.extend(2i16.to_be_bytes());
    bind.extend(0i16.to_be_bytes());
    bind.extend(1i16.to_be_bytes());
    raw.send(b'B', &bind).await;
    raw.send(b'D', b"P\0").await;
    raw.send(b'E', &[0, 0, 0, 0, 0]).await;
    raw.send(b'S', b"").await;
    let msgs = raw.until_ready().await;
    assert_eq!(types(&msgs), "12TDCZ");
    // RowDescription: c1 int8 (oid 20, len 8, text), c2 text (oid 25, len -1, binary).
    let desc = &msgs[2].1;
    assert_eq!(&desc[..2], &2i16.to_be_bytes());
    let c1 = &desc[2 + 3..2 + 3 + 18];
    assert_eq!(&c1[6..10], &20u32.to_be_bytes());
    assert_eq!(&c1[10..12], &8i16.to_be_bytes());
    assert_eq!(&c1[16..18], &0i16.to_be_bytes());
    let data = &msgs[3].1;
    let mut expected = 2i16.to_be_bytes().to_vec();
    expected.extend(3i32.to_be_bytes());
    expected.extend(b"-42");
    expected.extend(2i32.to_be_bytes());
    expected.extend(b"hi");
    assert_eq!(data, &expected);

    // A bad text parameter is a 22P02 error; the rest of the batch is skipped until Sync.
    let mut bind = cstr("");
    bind.extend(cstr("s1"));
    bind.extend(0i16.to_be_bytes());
    bind.extend(2i16.to_be_bytes());
    bind.extend(1i32.to_be_bytes());
    bind.extend(b"x");
    bind.extend((-1i32).to_be_bytes());
    bind.extend(0i16.to_be_bytes());
    raw.send(b'B', &bind).await;
    raw.send(b'E', &[0, 0, 0, 0, 0]).await;
    raw.send(b'S', b"").await;
    let msgs = raw.until_ready().await;
    assert_eq!(types(&msgs), "EZ");
    assert_eq!(error_code(&msgs[0].1), "22P02");
}

#[tokio::test]
async fn describe_statement_and_named_statements() {
    let server = start(PgConfig::default()).await;
    let (mut raw, _) = Raw::startup(&server).await;
    let mut parse = cstr("named");
    parse.extend(cstr("rows 2"));
    parse.extend(0i16.to_be_bytes());
    raw.send(b'P', &parse).await;
    raw.send(b'D', b"Snamed\0").await;
    raw.send(b'P', &parse).await; // Duplicate name: 42P05, then skip until Sync.
    raw.send(b'D', b"Snamed\0").await;
    raw.send(b'S', b"").await;
    let msgs = raw.until_ready().await;
    assert_eq!(types(&msgs), "1tTEZ");
    assert_eq!(msgs[1].1, 0i16.to_be_bytes());
    assert_eq!(error_code(&msgs[3].1), "42P05");

    raw.send(b'C', b"Snamed\0").await;
    raw.send(b'D', b"Snamed\0").await;
    raw.send(b'S', b"").await;
    let msgs = raw.until_ready().await;
    assert_eq!(types(&msgs), "3EZ");
    assert_eq!(error_code(&msgs[1].1), "26000");

    // An empty statement: NoData on Describe, EmptyQueryResponse on Execute.
    let mut parse = cstr("");
    parse.extend(cstr(""));
    parse.extend(0i16.to_be_bytes());
    raw.send(b'P', &parse).await;
    raw.send(b'B', &[0, 0, 0, 0, 0, 0, 0, 0]).await;
    raw.send(b'D', b"P\0").await;
    raw.send(b'E', &[0, 0, 0, 0, 0]).await;
    raw.send(b'S', b"").await;
    assert_eq!(types(&raw.until_ready().await), "12nIZ");
}

#[tokio::test]
async fn portals_return_rows_in_batches() {
    let server = start(PgConfig::default()).await;
    let mut client = client(&server).await;
    let tx = client.transaction().await.unwrap();
    let stmt = tx.prepare("rows 5").await.unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    let mut seen = Vec::new();
    for expected in [2, 2, 1, 0] {
        let rows = tx.query_portal(&portal, 2).await.unwrap();
        assert_eq!(rows.len(), expected);
        seen.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
    }
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn extended_errors_skip_until_sync_and_connection_recovers() {
    let server = start(PgConfig::default()).await;
    let client = client(&server).await;
    let err = client.prepare("fail").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42601");
    let err = client.execute("fail_exec", &[]).await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "0A000");
    let err = client
        .prepare_typed("echo", &[Type::JSON])
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "0A000");
    let rows = client.query("rows 2", &[]).await.unwrap();
    assert_eq!(rows.len(), 2);
}

#[tokio::test]
async fn garbage_oversized_and_vanishing_clients_end_only_their_session() {
    let config = PgConfig {
        max_message_bytes: 1024,
        ..PgConfig::default()
    };
    let server = start(config).await;
    let survivor = client(&server).await;

    // Garbage instead of a startup packet.
    let mut raw = Raw::connect(&server).await;
    raw.s
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let msgs = raw.until_closed().await;
    assert_eq!(types(&msgs), "E");
    assert_eq!(error_code(&msgs[0].1), "08P01");

    // Garbage after startup: an unknown message type.
    let (mut raw, _) = Raw::startup(&server).await;
    raw.s.write_all(&[0xff; 64]).await.unwrap();
    let msgs = raw.until_closed().await;
    assert_eq!(error_code(&msgs[0].1), "08P01");

    // A message over the limit.
    let (mut raw, _) = Raw::startup(&server).await;
    raw.send(b'Q', &cstr(&"x".repeat(2000))).await;
    let msgs = raw.until_closed().await;
    assert_eq!(error_code(&msgs[0].1), "54000");

    // A malformed body within a good frame is an ordinary error.
    let (mut raw, _) = Raw::startup(&server).await;
    raw.send(b'B', b"\0").await;
    raw.send(b'S', b"").await;
    let msgs = raw.until_ready().await;
    assert_eq!(types(&msgs), "EZ");
    assert_eq!(error_code(&msgs[0].1), "08P01");
    drop(raw);

    // A client that disconnects in the middle of a message and one that leaves mid-query.
    let (mut raw, _) = Raw::startup(&server).await;
    raw.s.write_all(&[b'Q', 0, 0, 0, 100, b's']).await.unwrap();
    drop(raw);
    let (mut raw, _) = Raw::startup(&server).await;
    raw.send(b'Q', &cstr("sleep 200")).await;
    drop(raw);

    // 3 sessions opened after startup above ended, plus the malformed-body one.
    wait_for_drops(&server.db, 5).await;
    assert_eq!(survivor.simple_query("rows 1").await.unwrap().len(), 3);
    let newcomer = client(&server).await;
    assert_eq!(newcomer.query("rows 3", &[]).await.unwrap().len(), 3);
}

#[tokio::test]
async fn cancel_requests_are_accepted_and_ignored() {
    let server = start(PgConfig::default()).await;
    let mut raw = Raw::connect(&server).await;
    let mut packet = 16i32.to_be_bytes().to_vec();
    packet.extend(80_877_102i32.to_be_bytes());
    packet.extend(1i32.to_be_bytes());
    packet.extend(2i32.to_be_bytes());
    raw.s.write_all(&packet).await.unwrap();
    assert!(raw.until_closed().await.is_empty());
}

#[tokio::test]
async fn too_many_connections_are_refused() {
    let server = start(PgConfig {
        max_connections: 1,
        ..PgConfig::default()
    })
    .await;
    let _first = client(&server).await;
    let conn_str = format!(
        "host=127.0.0.1 port={} user=x dbname=reef",
        server.addr.port()
    );
    let err = tokio_postgres::connect(&conn_str, NoTls)
        .await
        .err()
        .expect("second connection must fail");
    assert_eq!(err.code().unwrap().code(), "53300");
}

#[tokio::test]
async fn shutdown_terminates_idle_sessions() {
    let mut server = start(PgConfig::default()).await;
    let (mut raw, _) = Raw::startup(&server).await;
    server.stop.take().unwrap().send(()).unwrap();
    let msgs = raw.until_closed().await;
    assert_eq!(types(&msgs), "E");
    assert_eq!(error_code(&msgs[0].1), "57P01");
    server.task.await.unwrap().unwrap();
    assert_eq!(server.db.dropped.load(Ordering::SeqCst), 1);
    assert!(TcpStream::connect(server.addr).await.is_err());
}

/// PostgreSQL's interval, for the binary round trip.
#[derive(Debug, PartialEq, Clone, Copy)]
struct PgInterval {
    micros: i64,
    days: i32,
    months: i32,
}

impl ToSql for PgInterval {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&self.micros.to_be_bytes());
        out.extend_from_slice(&self.days.to_be_bytes());
        out.extend_from_slice(&self.months.to_be_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }

    tokio_postgres::types::to_sql_checked!();
}

impl<'a> FromSql<'a> for PgInterval {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let raw: [u8; 16] = raw.try_into()?;
        Ok(PgInterval {
            micros: i64::from_be_bytes(raw[..8].try_into()?),
            days: i32::from_be_bytes(raw[8..12].try_into()?),
            months: i32::from_be_bytes(raw[12..].try_into()?),
        })
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}
