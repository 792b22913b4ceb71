//! Runs SQLite sqllogictest corpus files against a running server and reports pass counts.
//!
//! ```text
//! slt-corpus --url postgresql://reef@127.0.0.1:5433/reef --root ../shared/sqllogictest \
//!     --summary out.tsv --baseline tests/conformance/reef-baseline.tsv ../shared/sqllogictest
//! ```
//!
//! Files run one after another, each on a fresh connection with the tables and views it creates
//! dropped before and after. The exit code is 1 if any file's pass rate is below the baseline's,
//! 2 on a usage or connection error, and 0 otherwise (failed records alone do not fail the run;
//! the baseline is the gate).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use reef_testkit::corpus::{self, Baseline, FileResult, Options};

#[derive(Parser, Debug)]
#[command(
    name = "slt-corpus",
    about = "Run the SQLite sqllogictest corpus over the PostgreSQL wire protocol"
)]
struct Args {
    /// Server URL. Defaults to $REEF_TEST_PG_URL, else postgresql://reef@127.0.0.1:5433/reef.
    #[arg(long)]
    url: Option<String>,
    /// Directory that file names in reports and baselines are relative to. Defaults to the first
    /// path if it is a directory, else its parent.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Engine label for skipif/onlyif (repeatable).
    #[arg(long = "label", default_value = "postgresql")]
    labels: Vec<String>,
    /// Per-record timeout in seconds; a record running longer is cancelled and fails.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Failures to print per file.
    #[arg(long, default_value_t = 3)]
    show_failures: usize,
    /// Write a summary: JSON if the name ends in .json, else TSV (the baseline format).
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Fail if any file's pass rate is below the one recorded in this TSV.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Files or directories (searched recursively for *.test).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// Collects `*.test` files under `path`, sorted.
fn collect(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            if entry.is_dir() {
                collect(&entry, out)?;
            } else if entry.extension().is_some_and(|e| e == "test") {
                out.push(entry);
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let url = args
        .url
        .clone()
        .or_else(|| {
            std::env::var("REEF_TEST_PG_URL")
                .ok()
                .filter(|u| !u.is_empty())
        })
        .unwrap_or_else(|| "postgresql://reef@127.0.0.1:5433/reef".to_string());
    let config: tokio_postgres::Config = match url.parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("slt-corpus: bad URL {url}: {e}");
            return ExitCode::from(2);
        }
    };
    let root = args.root.clone().unwrap_or_else(|| {
        let first = &args.paths[0];
        if first.is_dir() {
            first.clone()
        } else {
            first.parent().map(Path::to_path_buf).unwrap_or_default()
        }
    });
    let mut files = Vec::new();
    for path in &args.paths {
        if let Err(e) = collect(path, &mut files) {
            eprintln!("slt-corpus: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    let baseline = match &args.baseline {
        Some(path) => match Baseline::read(path) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("slt-corpus: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let options = Options {
        labels: args.labels.clone(),
        timeout: Duration::from_secs(args.timeout),
        keep_failures: args.show_failures,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");

    let started = Instant::now();
    let mut results: Vec<FileResult> = Vec::new();
    for file in &files {
        let name = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .to_string_lossy()
            .into_owned();
        match runtime.block_on(corpus::run_file(&config, file, &name, &options)) {
            Ok(r) => {
                println!(
                    "{:<48} {:>7} passed {:>7} failed {:>7} skipped  {:>6.2}%  {:>7.1}s",
                    r.name,
                    r.passed,
                    r.failed,
                    r.skipped,
                    r.pass_rate() * 100.0,
                    r.elapsed.as_secs_f64()
                );
                for f in &r.failures {
                    println!("    line {}: {}\n      {}", f.line, f.sql, f.reason);
                }
                results.push(r);
            }
            Err(e) => {
                eprintln!("slt-corpus: {name}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let passed: usize = results.iter().map(|r| r.passed).sum();
    let failed: usize = results.iter().map(|r| r.failed).sum();
    let skipped: usize = results.iter().map(|r| r.skipped).sum();
    let rate = if passed + failed == 0 {
        100.0
    } else {
        passed as f64 * 100.0 / (passed + failed) as f64
    };
    println!(
        "corpus total over {} files: records passed {passed}, failed {failed}, skipped {skipped} \
         ({rate:.2}% of records run) in {:.1}s",
        results.len(),
        started.elapsed().as_secs_f64()
    );

    if let Some(path) = &args.summary {
        let text = if path.extension().is_some_and(|e| e == "json") {
            corpus::write_json(&results)
        } else {
            corpus::write_tsv(
                &results,
                &format!("slt-corpus against {url}, labels {:?}", args.labels),
            )
        };
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("slt-corpus: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }

    if let Some(baseline) = &baseline {
        let not_run = baseline.not_run(&results);
        if !not_run.is_empty() {
            println!(
                "corpus baseline: note: {} baseline file(s) not run this time: {}",
                not_run.len(),
                not_run.join(", ")
            );
        }
        let regressions = baseline.regressions(&results);
        if !regressions.is_empty() {
            println!("corpus baseline: {} file(s) regressed:", regressions.len());
            for r in &regressions {
                println!("  {r}");
            }
            return ExitCode::from(1);
        }
        println!(
            "corpus baseline: no file below its recorded pass rate ({} files in the baseline)",
            baseline.entries.len()
        );
    }
    ExitCode::SUCCESS
}
