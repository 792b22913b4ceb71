//! Runs sqllogictest (`.slt`) files against a running server, each in a database created for it.
//!
//! ```text
//! slt-run --url postgresql://reef@127.0.0.1:5499/reef tests/sql/*.slt
//! ```
//!
//! This is how the golden files in `tests/sql/` are checked against a real PostgreSQL; against
//! reef, `cargo test -p reef-node --test sql` runs them with a fresh server per file instead.
//! Files named `reef_*` hold deliberately reef-specific behaviour and are skipped unless
//! `--engine reef`. Exits 1 if any file fails.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "slt-run",
    about = "Run .slt files against a PostgreSQL-protocol server"
)]
struct Args {
    /// Server URL; each file runs in a new database on this server.
    #[arg(long)]
    url: String,
    /// Engine label for skipif/onlyif: postgresql or reef.
    #[arg(long, default_value = "postgresql")]
    engine: String,
    /// The .slt files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let engine: &'static str = match args.engine.as_str() {
        "postgresql" => "postgresql",
        "reef" => "reef",
        other => {
            eprintln!("slt-run: unknown engine {other} (postgresql or reef)");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &args.files {
        let reef_only = file
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("reef_"));
        if reef_only && engine != "reef" {
            println!("skip   {} (reef-specific)", file.display());
            continue;
        }
        let result = runtime.block_on(reef_testkit::slt::run_file_in_new_database(
            &args.url, engine, file,
        ));
        match result {
            Ok(()) => {
                passed += 1;
                println!("ok     {}", file.display());
            }
            Err(report) => {
                failed += 1;
                println!("FAILED {}\n{report}", file.display());
            }
        }
    }
    println!("slt-run: {passed} files passed, {failed} files failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
