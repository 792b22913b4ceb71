//! SQL golden tests: every `tests/sql/**/*.slt` file, run through the PostgreSQL wire protocol.
//!
//! Each file is one test and gets a fresh `reef` server (own data directory and port), so files
//! never see each other's tables. Records run with the sqllogictest crate's rules; result column
//! types are checked strictly (`I` integer, `R` floating point or numeric, `T` anything else).
//! A failing file reports every failed record, not just the first.
//!
//! Set `REEF_TEST_PG_URL` (e.g. `postgresql://reef@127.0.0.1:5499/reef`) to run the same files
//! against another server, such as a real PostgreSQL, to check the expectations themselves: each
//! file then runs in a new database created for it, and files named `reef_*` (deliberately
//! reef-specific behaviour) are skipped.

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use reef_testkit::slt::{run_file as run_records, run_file_in_new_database};
use reef_testkit::TestServer;

/// How the files reach a server.
#[derive(Clone)]
enum Target {
    /// Start the given `reef` binary per file.
    Reef(PathBuf),
    /// Use this server URL, creating a database per file.
    External(String),
}

fn main() {
    let args = Arguments::from_args();
    // The runtime variable wins over the compile-time one: a build cache shared between clones
    // must not send the test to another clone's files.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let root = manifest_dir.join("../../tests/sql");
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no .slt files under {}", root.display());

    let target = match std::env::var("REEF_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Target::External(url),
        _ => Target::Reef(
            std::env::var_os("REEF_BIN")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_reef"))),
        ),
    };
    let trials = files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let reef_only = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("reef_"));
            let ignored = reef_only && matches!(target, Target::External(_));
            let target = target.clone();
            Trial::test(name, move || run_file(&target, &path)).with_ignored_flag(ignored)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

/// Collects `*.slt` files under `dir`, recursively.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "slt") {
            out.push(path);
        }
    }
}

/// Runs one file against a fresh server or database.
fn run_file(target: &Target, path: &Path) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    match target {
        Target::Reef(bin) => {
            let server = TestServer::builder()
                .bin(bin)
                .start()
                .map_err(|e| format!("cannot start reef: {e}"))?;
            let config: tokio_postgres::Config = server
                .pg_url()
                .parse()
                .map_err(|e| format!("bad URL: {e}"))?;
            let result = runtime.block_on(run_records(config, "reef", path));
            result.map_err(|report| {
                Failed::from(format!(
                    "{report}\n--- last lines of the server log ({}):\n{}",
                    server.log_path().display(),
                    server.log_tail(30)
                ))
            })
        }
        Target::External(url) => runtime
            .block_on(run_file_in_new_database(url, "postgresql", path))
            .map_err(Failed::from),
    }
}
