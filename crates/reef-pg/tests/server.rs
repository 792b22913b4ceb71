//! End-to-end tests of `reef_pg::serve` with a real `reef_sql::Database` on RocksDB in a
//! temporary directory, driven by tokio-postgres and raw sockets.

use std::time::Duration;

use reef_pg::{serve, PgConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

struct Server {
    _dir: tempfile::TempDir,
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), reef_pg::PgError>>,
}

async fn start() -> Server {
    start_with(PgConfig::default()).await
}

async fn start_with(config: PgConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel();
    let dir = tempfile::tempdir().unwrap();
    let engine =
        reef_storage::RocksEngine::open(&dir.path().join("db"), &Default::default()).unwrap();
    let client = reef_txn::TxnClient::local(std::sync::Arc::new(engine)).unwrap();
    let db = reef_sql::Database::open(client, reef_sql::SqlConfig::default()).unwrap();
    let task = tokio::spawn(serve(db, listener, config, async {
        let _ = rx.await;
    }));
    Server {
        _dir: dir,
        port,
        stop: Some(tx),
        task,
    }
}

async fn connect(server: &Server) -> Client {
    let conn_str = format!("host=127.0.0.1 port={} user=reef dbname=reef", server.port);
    let (client, connection) = tokio_postgres::connect(&conn_str, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn startup_works_and_errors_carry_sqlstate() {
    let server = start().await;
    let client = connect(&server).await;
    let err = client
        .simple_query("SELECT * FROM no_such_table")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42P01");
    let err = client
        .prepare("SELECT * FROM no_such_table")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42P01");
    // The connection is still usable after errors in both protocols.
    let rows = client.query("SELECT 2", &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    let err = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={} user=reef dbname=nope", server.port),
        NoTls,
    )
    .await
    .err()
    .expect("an unknown database must be refused");
    assert_eq!(err.code().unwrap().code(), "3D000");
}

#[tokio::test]
async fn server_survives_garbage_and_disconnects() {
    let mut server = start().await;
    let first = connect(&server).await;

    // Random bytes instead of a startup packet.
    let mut garbage = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    garbage
        .write_all(&[0x7f, 0x13, 0x00, 0xfe, 0xaa, 0x55, 0x01, 0x02, 0x03])
        .await
        .unwrap();
    let mut sink = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), garbage.read_to_end(&mut sink))
        .await
        .expect("the server must close a garbage connection")
        .ok();
    assert_eq!(sink.first(), Some(&b'E'));

    // A client that vanishes mid-session, with a query half sent.
    let doomed = connect(&server).await;
    drop(doomed);
    let mut half = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let mut startup = Vec::new();
    let body = [&196_608i32.to_be_bytes()[..], b"user\0reef\0\0"].concat();
    startup.extend(((body.len() + 4) as i32).to_be_bytes());
    startup.extend(body);
    half.write_all(&startup).await.unwrap();
    half.write_all(&[b'Q', 0, 0, 0, 50, b'S', b'E'])
        .await
        .unwrap();
    drop(half);

    // Both an old and a new client still work.
    assert_eq!(first.query("SELECT 1", &[]).await.unwrap().len(), 1);
    let second = connect(&server).await;
    assert_eq!(second.query("SELECT 1", &[]).await.unwrap().len(), 1);

    server.stop.take().unwrap().send(()).unwrap();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn select_one_round_trip() {
    let server = start().await;
    let client = connect(&server).await;
    let msgs = client.simple_query("SELECT 1").await.unwrap();
    let row = msgs
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().to_owned()),
            _ => None,
        })
        .unwrap();
    assert_eq!(row, "1");
    let rows = client
        .query("SELECT $1::int8 + 1", &[&41i64])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 42);
}

#[tokio::test]
async fn transactions_and_typed_round_trips() {
    let server = start().await;
    let mut client = connect(&server).await;
    client
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, name text, price numeric(10,2), at timestamptz)",
        )
        .await
        .unwrap();
    let tx = client.transaction().await.unwrap();
    let price: rust_decimal::Decimal = "12.50".parse().unwrap();
    let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    tx.execute(
        "INSERT INTO t VALUES ($1, $2, $3, $4)",
        &[&1i32, &"one", &price, &at],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let row = client
        .query_one("SELECT name, price, at FROM t WHERE id = $1", &[&1i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "one");
    assert_eq!(row.get::<_, rust_decimal::Decimal>(1), price);
    assert_eq!(row.get::<_, chrono::DateTime<chrono::Utc>>(2), at);

    // A disconnected client's open transaction is rolled back.
    let other = connect(&server).await;
    other
        .batch_execute("BEGIN; INSERT INTO t VALUES (2, 'two', 1, now())")
        .await
        .unwrap();
    drop(other);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let count: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
}

/// Parameters and NULLs in the SELECT list of INSERT ... SELECT take their target columns'
/// types, as PostgreSQL infers them.
#[tokio::test]
async fn insert_select_parameters_take_the_column_types() {
    let server = start().await;
    let client = connect(&server).await;
    client
        .batch_execute("CREATE TABLE acct (id int PRIMARY KEY, balance bigint NOT NULL, note date)")
        .await
        .unwrap();
    let inserted = client
        .execute(
            "INSERT INTO acct SELECT g, $2, NULL FROM generate_series(0, $1) AS g",
            &[&3i32, &100i64],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 4);
    let total: i64 = client
        .query_one("SELECT sum(balance)::bigint FROM acct", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 400);
    let statement = client
        .prepare("INSERT INTO acct SELECT $1, $2")
        .await
        .unwrap();
    assert_eq!(
        statement.params(),
        &[
            tokio_postgres::types::Type::INT4,
            tokio_postgres::types::Type::INT8
        ]
    );
}

/// Sends `chunks` through COPY FROM STDIN and returns the row count the server reports.
async fn copy_in(
    client: &Client,
    sql: &str,
    chunks: &[&[u8]],
) -> Result<u64, tokio_postgres::Error> {
    use futures::SinkExt;
    let sink = client.copy_in::<_, bytes::Bytes>(sql).await?;
    futures::pin_mut!(sink);
    for c in chunks {
        sink.send(bytes::Bytes::copy_from_slice(c)).await?;
    }
    sink.finish().await
}

/// Reads all of COPY TO STDOUT's data.
async fn copy_out(client: &Client, sql: &str) -> String {
    use futures::TryStreamExt;
    let stream = client.copy_out(sql).await.unwrap();
    let parts: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    String::from_utf8(parts.concat()).unwrap()
}

async fn count(client: &Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn copy_moves_rows_in_text_and_csv_atomically() {
    let server = start().await;
    let client = connect(&server).await;
    client
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT, score FLOAT8, note TEXT DEFAULT 'none')")
        .await
        .unwrap();
    // Rows split across messages at awkward places, with escapes and NULLs.
    let n = copy_in(
        &client,
        "COPY t (id, name, score) FROM STDIN",
        &[
            b"1\tal",
            b"ice\t1.5\n2\t\\N\t",
            b"2\n3\ttab\\there\\\\\t3\n",
        ],
    )
    .await
    .unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        copy_out(&client, "COPY t TO STDOUT").await,
        "1\talice\t1.5\tnone\n2\t\\N\t2\tnone\n3\ttab\\there\\\\\t3\tnone\n"
    );
    let n = copy_in(
        &client,
        "COPY t FROM STDIN WITH (FORMAT csv, HEADER true)",
        &[b"id,name,score,note\n4,\"a,\"\"b\"\"\nc\",4,\n5,,5,x\n"],
    )
    .await
    .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        copy_out(&client, "COPY (SELECT id, name, note FROM t WHERE id >= 4 ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)").await,
        "id,name,note\n4,\"a,\"\"b\"\"\nc\",\n5,,x\n"
    );

    // A bad value fails the whole COPY with the value's SQLSTATE: no row of it stays.
    let err = copy_in(
        &client,
        "COPY t (id, name) FROM STDIN",
        &[b"6\tok\n7\tok\nx\tbad\n"],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "22P02", "{err:?}");
    let err = copy_in(
        &client,
        "COPY t (id, name) FROM STDIN",
        &[b"8\tok\textra\n"],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "22P04", "{err:?}");
    // A duplicate key, found in a later batch than its first copy.
    let mut rows = String::new();
    for i in 100..1200 {
        rows.push_str(&format!("{i}\tn\n"));
    }
    rows.push_str("100\tdup\n");
    let err = copy_in(&client, "COPY t (id, name) FROM STDIN", &[rows.as_bytes()])
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "23505", "{err:?}");
    assert_eq!(count(&client, "t").await, 5);

    // Inside a transaction block, COPY's rows go with the block.
    client.batch_execute("BEGIN").await.unwrap();
    copy_in(&client, "COPY t (id) FROM STDIN", &[b"9\n10\n"])
        .await
        .unwrap();
    assert_eq!(count(&client, "t").await, 7);
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(count(&client, "t").await, 5);

    // The client abandoning a COPY (CopyFail) keeps none of it, and the session goes on.
    {
        use futures::SinkExt;
        let sink = client
            .copy_in::<_, bytes::Bytes>("COPY t (id) FROM STDIN")
            .await
            .unwrap();
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(b"11\n")).await.unwrap();
        // Dropping the sink unfinished sends CopyFail.
    }
    assert_eq!(count(&client, "t").await, 5);

    // Files on the server are refused with a hint.
    let err = client
        .batch_execute("COPY t FROM '/etc/passwd'")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "0A000");
    // pgbench's form of the options.
    copy_in(
        &client,
        "copy t (id) from stdin with (freeze on)",
        &[b"12\n"],
    )
    .await
    .unwrap();
    assert_eq!(count(&client, "t").await, 6);
}

#[tokio::test]
async fn cancel_request_and_statement_timeout_stop_statements() {
    let server = start().await;
    let client = connect(&server).await;
    let token = client.cancel_token();
    let sleeper = tokio::spawn(async move {
        let r = client.simple_query("SELECT pg_sleep(60)").await;
        (client, r)
    });
    // The cancel may race the query's start; send it until the query ends.
    let (client, result) = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        token.cancel_query(NoTls).await.unwrap();
        if sleeper.is_finished() {
            break sleeper.await.unwrap();
        }
    };
    let err = result.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "57014");
    let message = err.as_db_error().unwrap().message();
    assert!(message.contains("user request"), "{message}");
    // The session goes on; the cancel does not stick to the next statement.
    assert_eq!(count(&client, "generate_series(1, 3) AS g").await, 3);

    client
        .batch_execute("SET statement_timeout = '250ms'")
        .await
        .unwrap();
    let show = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap();
    assert_eq!(show.get::<_, String>(0), "250ms");
    let err = client
        .query("SELECT count(*) FROM generate_series(1, 1000000000)", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "57014");
    let message = err.as_db_error().unwrap().message();
    assert!(message.contains("statement timeout"), "{message}");
    // RESET brings the timeout back to none.
    client
        .batch_execute("RESET statement_timeout")
        .await
        .unwrap();
    client.query("SELECT pg_sleep(0.4)", &[]).await.unwrap();
    client
        .batch_execute("SET statement_timeout = '250ms'")
        .await
        .unwrap();
    client.batch_execute("RESET ALL").await.unwrap();
    client.query("SELECT pg_sleep(0.4)", &[]).await.unwrap();
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    client.query("SELECT pg_sleep(0.3)", &[]).await.unwrap();
    let err = client
        .batch_execute("SET statement_timeout = 'soon'")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "22023");
}

async fn connect_as(
    server: &Server,
    user: &str,
    password: Option<&str>,
) -> Result<Client, tokio_postgres::Error> {
    let mut conn_str = format!(
        "host=127.0.0.1 port={} user={user} dbname=reef",
        server.port
    );
    if let Some(p) = password {
        conn_str.push_str(&format!(" password='{p}'"));
    }
    let (client, connection) = tokio_postgres::connect(&conn_str, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn code(e: &tokio_postgres::Error) -> Option<&str> {
    e.code().map(|c| c.code())
}

#[tokio::test]
async fn roles_with_passwords_authenticate_with_scram() {
    let server = start().await;
    let admin = connect(&server).await;
    admin
        .batch_execute("CREATE USER alice PASSWORD 'wonder land'; CREATE ROLE viewer; CREATE USER \"Bob\" WITH NOLOGIN")
        .await
        .unwrap();
    let err = admin.batch_execute("CREATE USER alice").await.unwrap_err();
    assert_eq!(code(&err), Some("42710"));

    // The right password gets in; the session runs as the role.
    let alice = connect_as(&server, "alice", Some("wonder land"))
        .await
        .unwrap();
    let me: String = alice
        .query_one("SHOW session_authorization", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(me, "alice");
    // A wrong one, or none, does not.
    let err = connect_as(&server, "alice", Some("wonderland"))
        .await
        .err()
        .unwrap();
    assert_eq!(code(&err), Some("28P01"), "{err:?}");
    assert!(connect_as(&server, "alice", None).await.is_err());
    // Roles that may not log in, and unknown roles, are refused.
    let err = connect_as(&server, "viewer", None).await.err().unwrap();
    assert_eq!(code(&err), Some("28000"), "{err:?}");
    let err = connect_as(&server, "Bob", None).await.err().unwrap();
    assert_eq!(code(&err), Some("28000"), "{err:?}");
    let err = connect_as(&server, "nobody", None).await.err().unwrap();
    assert_eq!(code(&err), Some("28000"), "{err:?}");

    // The session's role is the one that authenticated: it cannot be changed by SET, RESET
    // or a startup option.
    let err = alice
        .batch_execute("SET session_authorization = 'reef'")
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some("55P02"));
    alice.batch_execute("RESET ALL").await.unwrap();
    let me: String = alice
        .query_one("SELECT current_user", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(me, "alice");
    let forged = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=alice password='wonder land' dbname=reef options='-c session_authorization=reef'",
            server.port
        ),
        NoTls,
    )
    .await
    .err()
    .expect("a startup option must not change the role");
    assert_eq!(code(&forged), Some("55P02"), "{forged:?}");
    // A role that may not log in is refused even with its right password.
    admin
        .batch_execute("CREATE ROLE keeper PASSWORD 'k'")
        .await
        .unwrap();
    let err = connect_as(&server, "keeper", Some("k"))
        .await
        .err()
        .unwrap();
    assert_eq!(code(&err), Some("28000"), "{err:?}");

    // Only superusers manage roles; a user may change its own password.
    let err = alice
        .batch_execute("CREATE USER mallory")
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some("42501"));
    let err = alice
        .batch_execute("ALTER USER alice SUPERUSER")
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some("42501"));
    alice
        .batch_execute("ALTER USER alice PASSWORD 'through the glass'")
        .await
        .unwrap();
    assert!(connect_as(&server, "alice", Some("wonder land"))
        .await
        .is_err());
    connect_as(&server, "alice", Some("through the glass"))
        .await
        .unwrap();

    // Passwords are stored as SCRAM verifiers; a verifier given as the password is kept.
    // Made by PostgreSQL 15 for the password "pencil" (pg_authid.rolpassword).
    let verifier = "SCRAM-SHA-256$4096:hXRxXvGJU8aUVIezupjtyw==$jzMIHH8CzK74KYSNke9wA6knRF6OC0Y8uawz8Cs8kyg=:7J97Bvt3j+MLbCYvFJh4u9l8UQ/E392uvZTLlYmIYfc=";
    admin
        .batch_execute(&format!("CREATE USER carol PASSWORD '{verifier}'"))
        .await
        .unwrap();
    connect_as(&server, "carol", Some("pencil")).await.unwrap();

    let err = admin.batch_execute("DROP USER reef").await.unwrap_err();
    assert_eq!(code(&err), Some("55006"));
    admin
        .batch_execute("DROP USER alice, carol; DROP ROLE IF EXISTS nobody")
        .await
        .unwrap();
    let err = connect_as(&server, "alice", Some("through the glass"))
        .await
        .err()
        .unwrap();
    assert_eq!(code(&err), Some("28000"), "{err:?}");
}

#[tokio::test]
async fn required_passwords_refuse_roles_without_one() {
    let server = start_with(PgConfig {
        require_password: true,
        ..PgConfig::default()
    })
    .await;
    // A role without a password cannot log in, and is not told why before a proof.
    assert!(connect_as(&server, "reef", None).await.is_err());
    let err = connect_as(&server, "reef", Some("guess"))
        .await
        .err()
        .unwrap();
    assert_eq!(code(&err), Some("28P01"), "{err:?}");
    // An unknown role goes through SCRAM and fails like a wrong password.
    let err = connect_as(&server, "nobody", Some("guess"))
        .await
        .err()
        .unwrap();
    assert_eq!(code(&err), Some("28P01"), "{err:?}");
}

#[tokio::test]
async fn tls_is_offered_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl must be installed (scripts/ensure-deps.sh installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let server = start_with(PgConfig {
        tls: Some(reef_pg::TlsConfig::from_pem_files(&cert, &key).unwrap()),
        ..PgConfig::default()
    })
    .await;
    // psql with sslmode=require fails unless the server speaks TLS.
    let port = server.port;
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("psql")
            .arg(format!(
                "postgresql://reef@127.0.0.1:{port}/reef?sslmode=require"
            ))
            .args(["-X", "-A", "-t", "-c", "SELECT 40 + 2"])
            .output()
            .expect("psql must be installed (scripts/ensure-deps.sh installs it)")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    // A server without TLS refuses sslmode=require.
    let plain = start().await;
    let port = plain.port;
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("psql")
            .arg(format!(
                "postgresql://reef@127.0.0.1:{port}/reef?sslmode=require"
            ))
            .args(["-X", "-c", "SELECT 1"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SSL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
