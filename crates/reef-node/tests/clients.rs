//! Real clients against a real server: psql runs script files and one-off commands.
//!
//! psql (postgresql-client, installed by scripts/ensure-deps.sh) must be on PATH.

use std::path::Path;
use std::process::{Command, Output};

use reef_testkit::TestServer;

/// The `reef` binary under test: `$REEF_BIN` if set, else the one cargo built for this test.
fn reef_bin() -> std::path::PathBuf {
    std::env::var_os("REEF_BIN")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_BIN_EXE_reef")))
}

/// Runs psql with `args` against the server, without reading ~/.psqlrc.
fn psql(server: &TestServer, args: &[&str]) -> Output {
    Command::new("psql")
        .arg("-X")
        .arg("--no-password")
        .args(args)
        .arg(server.pg_url())
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql runs (install postgresql-client: scripts/ensure-deps.sh)")
}

fn start() -> TestServer {
    TestServer::builder()
        .bin(reef_bin())
        .start()
        .expect("reef starts")
}

fn write_script(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the script");
    path.to_string_lossy().into_owned()
}

#[test]
fn psql_runs_a_script_file() {
    let server = start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write_script(
        dir.path(),
        "setup.sql",
        "\\set ON_ERROR_STOP on\n\
         CREATE TABLE inventory (\n\
           id integer PRIMARY KEY,\n\
           item text NOT NULL,\n\
           qty integer DEFAULT 0\n\
         );\n\
         INSERT INTO inventory VALUES (1, 'bolt', 40), (2, 'nut', 75);\n\
         INSERT INTO inventory (id, item) VALUES (3, 'gear');\n\
         BEGIN;\n\
         UPDATE inventory SET qty = qty - 5 WHERE item = 'bolt';\n\
         COMMIT;\n\
         -- a comment line\n\
         SELECT id, item, qty FROM inventory ORDER BY id;\n\
         \\echo done\n\
         SELECT count(*) AS n, sum(qty) AS total FROM inventory;\n",
    );
    let out = psql(
        &server,
        &["-v", "ON_ERROR_STOP=1", "-A", "-t", "-f", &script],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "psql failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
        out.status,
        server.log_tail(30)
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        [
            "CREATE TABLE",
            "INSERT 0 2",
            "INSERT 0 1",
            "BEGIN",
            "UPDATE 1",
            "COMMIT",
            "1|bolt|35",
            "2|nut|75",
            "3|gear|0",
            "done",
            "3|110",
        ],
        "stderr:\n{stderr}"
    );
}

#[test]
fn psql_stops_at_the_first_error_with_on_error_stop() {
    let server = start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = write_script(
        dir.path(),
        "fails.sql",
        "CREATE TABLE t (id integer PRIMARY KEY);\n\
         INSERT INTO t VALUES (1);\n\
         INSERT INTO t VALUES (1);\n\
         INSERT INTO t VALUES (2);\n",
    );
    let out = psql(&server, &["-v", "ON_ERROR_STOP=1", "-q", "-f", &script]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "psql exits 3 on a script error; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("duplicate key value violates unique constraint"),
        "stderr:\n{stderr}"
    );

    // The statement after the failing one never ran.
    let out = psql(&server, &["-A", "-t", "-c", "SELECT count(*) FROM t"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
}

#[test]
fn psql_shows_aligned_tables_and_nulls() {
    let server = start();
    let out = psql(
        &server,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-P",
            "null=<null>",
            "-c",
            "SELECT 1 AS a, 'x'::text AS b, NULL::integer AS c",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        " a | b |   c    \n---+---+--------\n 1 | x | <null>\n(1 row)\n\n"
    );
}
