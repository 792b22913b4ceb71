//! The Rust drivers against a running server (`REEF_URL`), used as applications use them:
//! tokio-postgres and sqlx connect, create a table, insert and select with parameters in the
//! binary and text formats, reuse a prepared statement many times, roll a transaction back,
//! read an error's SQLSTATE, and round-trip NULLs and every type reef supports exactly.
//! A failed check panics, so the program exits non-zero. scripts/drivers.sh runs it.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;

fn url() -> String {
    std::env::var("REEF_URL").expect("REEF_URL names the server, postgresql://user@host:port/db")
}

fn main() {
    // Each driver works in its own tables; earlier runs' tables are dropped first.
    runtime().block_on(async {
        let (client, conn) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
            .batch_execute("DROP TABLE IF EXISTS tp_types; DROP TABLE IF EXISTS tp_many; DROP TABLE IF EXISTS sx_types; DROP TABLE IF EXISTS items")
            .await
            .unwrap();
    });
    tokio_postgres_works_unchanged();
    println!("tokio-postgres: ok");
    sqlx_works_unchanged();
    println!("sqlx: ok");
    println!("rust: 2 passed, 0 failed");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// One row of every supported type, with values at the edges of their ranges.
struct Sample {
    id: i32,
    b: bool,
    i2: i16,
    i4: i32,
    i8: i64,
    f4: f32,
    f8: f64,
    num: Decimal,
    txt: String,
    vc: String,
    by: Vec<u8>,
    d: NaiveDate,
    ts: NaiveDateTime,
    tz: DateTime<Utc>,
}

fn samples() -> Vec<Sample> {
    let ts = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    vec![
        Sample {
            id: 1,
            b: true,
            i2: i16::MIN,
            i4: i32::MIN,
            i8: i64::MIN,
            f4: -1.5e-38,
            f8: f64::MIN_POSITIVE,
            num: "-12345678901234567890.123456789".parse().unwrap(),
            txt: "héllo, 世界 🌊 'quoted' \"double\" \\ back".into(),
            vc: String::new(),
            by: (0..=255).collect(),
            d: NaiveDate::from_ymd_opt(1, 1, 1).unwrap(),
            ts: ts("1970-01-01 00:00:00.000001"),
            tz: ts("1999-12-31 23:59:59.999999").and_utc(),
        },
        Sample {
            id: 2,
            b: false,
            i2: i16::MAX,
            i4: i32::MAX,
            i8: i64::MAX,
            f4: f32::MAX,
            f8: -f64::MAX,
            num: "0.000000000000000000000000001".parse().unwrap(),
            txt: "line\nbreak\ttab".into(),
            vc: "v".repeat(40),
            by: Vec::new(),
            d: NaiveDate::from_ymd_opt(9999, 12, 31).unwrap(),
            ts: ts("2262-04-11 23:47:16.854775"),
            tz: ts("2038-01-19 03:14:08").and_utc(),
        },
    ]
}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS {t} (id INT PRIMARY KEY, b BOOLEAN, i2 SMALLINT, \
    i4 INTEGER, i8 BIGINT, f4 REAL, f8 DOUBLE PRECISION, num NUMERIC, txt TEXT, vc VARCHAR(40), \
    by BYTEA, d DATE, ts TIMESTAMP, tz TIMESTAMPTZ)";
const INSERT: &str = "INSERT INTO {t} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
const SELECT: &str = "SELECT id, b, i2, i4, i8, f4, f8, num, txt, vc, by, d, ts, tz FROM {t} WHERE id = $1";

fn tokio_postgres_works_unchanged() {
    runtime().block_on(async {
        let (client, conn) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        let t = "tp_types";
        client.batch_execute(&CREATE.replace("{t}", t)).await.unwrap();
        // Parameters travel in the binary format; results come back binary (extended protocol).
        let insert = client.prepare(&INSERT.replace("{t}", t)).await.unwrap();
        for s in samples() {
            client
                .execute(
                    &insert,
                    &[&s.id, &s.b, &s.i2, &s.i4, &s.i8, &s.f4, &s.f8, &s.num, &s.txt, &s.vc, &s.by, &s.d, &s.ts, &s.tz],
                )
                .await
                .unwrap();
        }
        let select = client.prepare(&SELECT.replace("{t}", t)).await.unwrap();
        for s in samples() {
            let r = client.query_one(&select, &[&s.id]).await.unwrap();
            assert_eq!(r.get::<_, bool>(1), s.b);
            assert_eq!(r.get::<_, i16>(2), s.i2);
            assert_eq!(r.get::<_, i32>(3), s.i4);
            assert_eq!(r.get::<_, i64>(4), s.i8);
            assert_eq!(r.get::<_, f32>(5), s.f4);
            assert_eq!(r.get::<_, f64>(6), s.f8);
            assert_eq!(r.get::<_, Decimal>(7), s.num);
            assert_eq!(r.get::<_, String>(8), s.txt);
            assert_eq!(r.get::<_, String>(9), s.vc);
            assert_eq!(r.get::<_, Vec<u8>>(10), s.by);
            assert_eq!(r.get::<_, NaiveDate>(11), s.d);
            assert_eq!(r.get::<_, NaiveDateTime>(12), s.ts);
            assert_eq!(r.get::<_, DateTime<Utc>>(13), s.tz);
        }
        // The text format (simple query) gives PostgreSQL's text forms.
        let rows = client
            .simple_query(&format!("SELECT i8, num, by, ts, tz FROM {t} WHERE id = 2"))
            .await
            .unwrap();
        let tokio_postgres::SimpleQueryMessage::Row(row) = &rows[1] else {
            panic!("expected a row first: {rows:?}");
        };
        assert_eq!(row.get(0), Some("9223372036854775807"));
        assert_eq!(row.get(1), Some("0.000000000000000000000000001"));
        assert_eq!(row.get(2), Some("\\x"));
        assert_eq!(row.get(3), Some("2262-04-11 23:47:16.854775"));
        assert_eq!(row.get(4), Some("2038-01-19 03:14:08+00"));

        // NULLs in every column.
        client
            .execute(
                &format!("INSERT INTO {t} (id) VALUES ($1)"),
                &[&3i32],
            )
            .await
            .unwrap();
        let r = client.query_one(&select, &[&3i32]).await.unwrap();
        assert_eq!(r.get::<_, Option<bool>>(1), None);
        assert_eq!(r.get::<_, Option<i16>>(2), None);
        assert_eq!(r.get::<_, Option<i32>>(3), None);
        assert_eq!(r.get::<_, Option<i64>>(4), None);
        assert_eq!(r.get::<_, Option<f32>>(5), None);
        assert_eq!(r.get::<_, Option<f64>>(6), None);
        assert_eq!(r.get::<_, Option<Decimal>>(7), None);
        assert_eq!(r.get::<_, Option<String>>(8), None);
        assert_eq!(r.get::<_, Option<String>>(9), None);
        assert_eq!(r.get::<_, Option<Vec<u8>>>(10), None);
        assert_eq!(r.get::<_, Option<NaiveDate>>(11), None);
        assert_eq!(r.get::<_, Option<NaiveDateTime>>(12), None);
        assert_eq!(r.get::<_, Option<DateTime<Utc>>>(13), None);

        // One prepared statement, run many times.
        client.batch_execute("CREATE TABLE tp_many (k INT PRIMARY KEY, v TEXT)").await.unwrap();
        let ins = client.prepare("INSERT INTO tp_many VALUES ($1, $2)").await.unwrap();
        for k in 0..200i32 {
            client.execute(&ins, &[&k, &format!("v{k}")]).await.unwrap();
        }
        let get = client.prepare("SELECT v FROM tp_many WHERE k = $1").await.unwrap();
        for k in (0..200i32).step_by(7) {
            let v: String = client.query_one(&get, &[&k]).await.unwrap().get(0);
            assert_eq!(v, format!("v{k}"));
        }

        // A transaction that rolls back leaves nothing.
        let mut client = client;
        let tx = client.transaction().await.unwrap();
        tx.execute("DELETE FROM tp_many WHERE k < 100", &[]).await.unwrap();
        tx.execute("INSERT INTO tp_many VALUES (1000, 'x')", &[]).await.unwrap();
        tx.rollback().await.unwrap();
        let n: i64 = client.query_one("SELECT count(*) FROM tp_many", &[]).await.unwrap().get(0);
        assert_eq!(n, 200);

        // Errors carry their SQLSTATE and the connection goes on.
        let err = client.execute(&ins, &[&5i32, &"dup"]).await.unwrap_err();
        assert_eq!(err.code().unwrap().code(), "23505");
        let err = client.query("SELECT 1 / 0", &[]).await.unwrap_err();
        assert_eq!(err.code().unwrap().code(), "22012");
        let err = client.query("SELECT * FROM missing", &[]).await.unwrap_err();
        assert_eq!(err.code().unwrap().code(), "42P01");
        assert_eq!(client.query("SELECT 1", &[]).await.unwrap().len(), 1);
    });
}

#[derive(sqlx::FromRow, Debug, PartialEq)]
struct Item {
    id: i32,
    name: Option<String>,
    price: Option<Decimal>,
    made: Option<DateTime<Utc>>,
}

fn sqlx_works_unchanged() {
    runtime().block_on(async {
        use sqlx::postgres::PgPoolOptions;
        use sqlx::Row;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&url())
            .await
            .expect("connect");
        let t = "sx_types";
        sqlx::query(&CREATE.replace("{t}", t)).execute(&pool).await.unwrap();
        for s in samples() {
            sqlx::query(&INSERT.replace("{t}", t))
                .bind(s.id)
                .bind(s.b)
                .bind(s.i2)
                .bind(s.i4)
                .bind(s.i8)
                .bind(s.f4)
                .bind(s.f8)
                .bind(s.num)
                .bind(&s.txt)
                .bind(&s.vc)
                .bind(&s.by)
                .bind(s.d)
                .bind(s.ts)
                .bind(s.tz)
                .execute(&pool)
                .await
                .unwrap();
        }
        for s in samples() {
            let r = sqlx::query(&SELECT.replace("{t}", t))
                .bind(s.id)
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(r.get::<bool, _>("b"), s.b);
            assert_eq!(r.get::<i16, _>("i2"), s.i2);
            assert_eq!(r.get::<i32, _>("i4"), s.i4);
            assert_eq!(r.get::<i64, _>("i8"), s.i8);
            assert_eq!(r.get::<f32, _>("f4"), s.f4);
            assert_eq!(r.get::<f64, _>("f8"), s.f8);
            assert_eq!(r.get::<Decimal, _>("num"), s.num);
            assert_eq!(r.get::<String, _>("txt"), s.txt);
            assert_eq!(r.get::<String, _>("vc"), s.vc);
            assert_eq!(r.get::<Vec<u8>, _>("by"), s.by);
            assert_eq!(r.get::<NaiveDate, _>("d"), s.d);
            assert_eq!(r.get::<NaiveDateTime, _>("ts"), s.ts);
            assert_eq!(r.get::<DateTime<Utc>, _>("tz"), s.tz);
        }

        // Rows into structs, NULLs as None; one statement run many times (sqlx caches it).
        sqlx::query("CREATE TABLE items (id INT PRIMARY KEY, name TEXT, price NUMERIC(10,2), made TIMESTAMPTZ)")
            .execute(&pool)
            .await
            .unwrap();
        let made = DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z").unwrap().with_timezone(&Utc);
        for id in 0..200 {
            let item = Item {
                id,
                name: (id % 3 != 0).then(|| format!("item {id}")),
                price: (id % 5 != 0).then(|| Decimal::new(id as i64 * 101, 2)),
                made: (id % 2 == 0).then_some(made),
            };
            sqlx::query("INSERT INTO items VALUES ($1, $2, $3, $4)")
                .bind(item.id)
                .bind(&item.name)
                .bind(item.price)
                .bind(item.made)
                .execute(&pool)
                .await
                .unwrap();
        }
        let items: Vec<Item> = sqlx::query_as("SELECT id, name, price, made FROM items WHERE id < $1 ORDER BY id")
            .bind(4)
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(
            items,
            vec![
                Item { id: 0, name: None, price: None, made: Some(made) },
                Item { id: 1, name: Some("item 1".into()), price: Some(Decimal::new(101, 2)), made: None },
                Item { id: 2, name: Some("item 2".into()), price: Some(Decimal::new(202, 2)), made: Some(made) },
                Item { id: 3, name: None, price: Some(Decimal::new(303, 2)), made: None },
            ]
        );

        // A transaction that rolls back leaves nothing.
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("DELETE FROM items").execute(&mut *tx).await.unwrap();
        tx.rollback().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM items").fetch_one(&pool).await.unwrap();
        assert_eq!(n, 200);

        // Errors carry their SQLSTATE.
        let err = sqlx::query("INSERT INTO items (id) VALUES (1)")
            .execute(&pool)
            .await
            .unwrap_err();
        assert_eq!(err.as_database_error().unwrap().code().as_deref(), Some("23505"));
        let err = sqlx::query("SELECT nope FROM items").execute(&pool).await.unwrap_err();
        assert_eq!(err.as_database_error().unwrap().code().as_deref(), Some("42703"));
        let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await.unwrap();
        assert_eq!(one, 1);
        pool.close().await;
    });
}
