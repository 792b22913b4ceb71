//! The SQLite sqllogictest corpus: parser and runner with the original runner's rules.
//!
//! The corpus (`select1.test`, `evidence/`, `random/`, `index/` ...) predates the Rust
//! sqllogictest crate and differs from it in ways that change results, so it gets its own small
//! parser and runner here:
//!
//! - Records are separated by blank lines; `#` starts a comment line; files may use CRLF.
//! - `statement ok` / `statement error` pass when the statement succeeds / fails (any error).
//! - `query <types> <sort> [label]`: the type letters decide how each value prints, whatever the
//!   server's column type: `I` as an integer (fractions truncate toward zero, booleans as 0/1),
//!   `R` with `%.3f`, `T` as text with characters outside printable ASCII shown as `@`. NULL
//!   prints `NULL` and the empty string `(empty)`.
//! - `rowsort` sorts the rows, `valuesort` all values, `nosort` keeps the server's order.
//! - Expected results are one value per line, or `N values hashing to MD5` where MD5 is the
//!   digest of every value followed by `\n`.
//! - `skipif L` / `onlyif L` apply to the next record; a trailing `# comment` is ignored. A
//!   `halt` only stops the file if its conditions select it.
//!
//! Each file runs on its own connection. Tables and views the file creates are dropped before
//! (leftovers of an earlier crashed run) and after it, so files do not see each other's state.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use tokio_postgres::SimpleQueryMessage;

use crate::slt::DbError;
use crate::Error;

/// A condition in front of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `skipif LABEL`: skip the record on engines with this label.
    SkipIf(String),
    /// `onlyif LABEL`: run the record only on engines with this label.
    OnlyIf(String),
}

/// How query results are sorted before comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortMode {
    /// Keep the server's order.
    NoSort,
    /// Sort rows.
    RowSort,
    /// Sort all values independently.
    ValueSort,
}

/// The expected result of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// The values, one per line.
    Values(Vec<String>),
    /// `COUNT values hashing to MD5`.
    Hash {
        /// The number of values.
        count: usize,
        /// The lowercase hex MD5 of every value followed by a newline.
        md5: String,
    },
}

/// One record of a corpus file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `statement ok|error` and its SQL.
    Statement {
        /// The 1-based line of the `statement` keyword.
        line: usize,
        /// The conditions in front of it.
        conditions: Vec<Condition>,
        /// Whether the statement is expected to fail.
        expect_error: bool,
        /// The SQL text.
        sql: String,
    },
    /// `query TYPES SORT [LABEL]`, its SQL and its expected result.
    Query {
        /// The 1-based line of the `query` keyword.
        line: usize,
        /// The conditions in front of it.
        conditions: Vec<Condition>,
        /// One letter per column: `I`, `R` or `T`.
        types: String,
        /// The sort mode.
        sort: SortMode,
        /// The SQL text.
        sql: String,
        /// The expected result.
        expected: Expected,
    },
    /// `hash-threshold N`.
    HashThreshold {
        /// The 1-based line.
        line: usize,
        /// The threshold; 0 disables hashing.
        threshold: usize,
    },
    /// `halt`: stop the file, if the conditions select it.
    Halt {
        /// The 1-based line.
        line: usize,
        /// The conditions in front of it.
        conditions: Vec<Condition>,
    },
    /// A record that could not be parsed; it counts as a failure.
    Invalid {
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl Record {
    /// The record's 1-based line number.
    pub fn line(&self) -> usize {
        match self {
            Record::Statement { line, .. }
            | Record::Query { line, .. }
            | Record::HashThreshold { line, .. }
            | Record::Halt { line, .. }
            | Record::Invalid { line, .. } => *line,
        }
    }
}

/// Strips a trailing `# comment` from a directive line.
fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(i) => line[..i].trim_end(),
        None => line.trim_end(),
    }
}

/// Parses the text of a corpus file. Malformed records become [`Record::Invalid`].
pub fn parse(text: &str) -> Vec<Record> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut records = Vec::new();
    let mut conditions: Vec<Condition> = Vec::new();
    let mut i = 0;
    // Collects lines from `i` until a blank line or one equal to `stop`.
    let take_block = |i: &mut usize, stop: Option<&str>| -> Vec<String> {
        let mut block = Vec::new();
        while *i < lines.len() {
            let l = lines[*i];
            if l.trim().is_empty() || stop.is_some_and(|s| l.trim_end() == s) {
                break;
            }
            block.push(l.to_string());
            *i += 1;
        }
        block
    };
    while i < lines.len() {
        let raw = lines[i];
        let line_no = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            // A blank line ends any dangling conditions only if they preceded nothing; the
            // original runner keeps them for the next record, and so do we.
            i += 1;
            continue;
        }
        let directive = strip_comment(trimmed);
        let words: Vec<&str> = directive.split_whitespace().collect();
        i += 1;
        match words.first().copied() {
            Some("skipif") | Some("onlyif") if words.len() >= 2 => {
                let label = words[1].to_string();
                conditions.push(if words[0] == "skipif" {
                    Condition::SkipIf(label)
                } else {
                    Condition::OnlyIf(label)
                });
            }
            Some("hash-threshold") => match words.get(1).and_then(|w| w.parse().ok()) {
                Some(threshold) => records.push(Record::HashThreshold {
                    line: line_no,
                    threshold,
                }),
                None => records.push(Record::Invalid {
                    line: line_no,
                    message: format!("bad hash-threshold: {trimmed}"),
                }),
            },
            Some("halt") => records.push(Record::Halt {
                line: line_no,
                conditions: std::mem::take(&mut conditions),
            }),
            Some("statement") => {
                let expect_error = match words.get(1).copied() {
                    Some("ok") => false,
                    Some("error") => true,
                    _ => {
                        take_block(&mut i, None);
                        conditions.clear();
                        records.push(Record::Invalid {
                            line: line_no,
                            message: format!("bad statement line: {trimmed}"),
                        });
                        continue;
                    }
                };
                let sql = take_block(&mut i, None).join("\n");
                records.push(Record::Statement {
                    line: line_no,
                    conditions: std::mem::take(&mut conditions),
                    expect_error,
                    sql,
                });
            }
            Some("query") => {
                let types = words.get(1).copied().unwrap_or("").to_string();
                let sort = match words.get(2).copied() {
                    None | Some("nosort") => Some(SortMode::NoSort),
                    Some("rowsort") => Some(SortMode::RowSort),
                    Some("valuesort") => Some(SortMode::ValueSort),
                    Some(_) => None,
                };
                let sql = take_block(&mut i, Some("----")).join("\n");
                let mut results = Vec::new();
                if i < lines.len() && lines[i].trim_end() == "----" {
                    i += 1;
                    results = take_block(&mut i, None);
                }
                let conds = std::mem::take(&mut conditions);
                let (Some(sort), false) = (sort, types.is_empty()) else {
                    records.push(Record::Invalid {
                        line: line_no,
                        message: format!("bad query line: {trimmed}"),
                    });
                    continue;
                };
                records.push(Record::Query {
                    line: line_no,
                    conditions: conds,
                    types,
                    sort,
                    sql,
                    expected: parse_expected(results),
                });
            }
            _ => {
                take_block(&mut i, None);
                conditions.clear();
                records.push(Record::Invalid {
                    line: line_no,
                    message: format!("unknown record: {trimmed}"),
                });
            }
        }
    }
    records
}

/// Recognizes `N values hashing to MD5`; anything else is a list of values.
fn parse_expected(results: Vec<String>) -> Expected {
    if let [only] = results.as_slice() {
        let words: Vec<&str> = only.split_whitespace().collect();
        if let [count, "values", "hashing", "to", md5] = words.as_slice() {
            if let Ok(count) = count.parse() {
                return Expected::Hash {
                    count,
                    md5: md5.to_ascii_lowercase(),
                };
            }
        }
    }
    Expected::Values(results)
}

/// Returns whether a record with these conditions runs on an engine with `labels`.
pub fn selected(conditions: &[Condition], labels: &[String]) -> bool {
    conditions.iter().all(|c| match c {
        Condition::SkipIf(l) => !labels.iter().any(|x| x == l),
        Condition::OnlyIf(l) => labels.iter().any(|x| x == l),
    })
}

/// Formats one value for a column of type letter `ty`.
pub fn format_value(value: Option<&str>, ty: char) -> String {
    let Some(text) = value else {
        return "NULL".to_string();
    };
    match ty {
        'I' => {
            let t = text.trim();
            if let Ok(n) = t.parse::<i64>() {
                n.to_string()
            } else if let Some(b) = parse_bool(t) {
                u8::from(b).to_string()
            } else if let Ok(f) = t.parse::<f64>() {
                // Truncation toward zero, as the reference runner's integer conversion does.
                format!("{}", f.trunc() as i64)
            } else {
                "0".to_string()
            }
        }
        'R' => {
            let t = text.trim();
            let f = match parse_bool(t) {
                Some(b) => f64::from(u8::from(b)),
                None => t.parse::<f64>().unwrap_or(0.0),
            };
            let s = format!("{f:.3}");
            if s == "-0.000" {
                "0.000".to_string()
            } else {
                s
            }
        }
        _ => {
            if text.is_empty() {
                "(empty)".to_string()
            } else {
                text.chars()
                    .map(|c| if (' '..='~').contains(&c) { c } else { '@' })
                    .collect()
            }
        }
    }
}

/// PostgreSQL's text form of a boolean.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "t" | "true" => Some(true),
        "f" | "false" => Some(false),
        _ => None,
    }
}

/// The MD5 of every value followed by a newline, as lowercase hex.
pub fn hash_values(values: &[String]) -> String {
    let mut md5 = Md5::new();
    for v in values {
        md5.update(v.as_bytes());
        md5.update(b"\n");
    }
    let mut out = String::with_capacity(32);
    for byte in md5.finalize() {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Formats, sorts and flattens `rows` for a query with `types` and `sort`.
pub fn result_values(rows: &[Vec<Option<String>>], types: &str, sort: SortMode) -> Vec<String> {
    let letters: Vec<char> = types.chars().collect();
    let mut formatted: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(i, v)| format_value(v.as_deref(), letters.get(i).copied().unwrap_or('T')))
                .collect()
        })
        .collect();
    if sort == SortMode::RowSort {
        formatted.sort();
    }
    let mut values: Vec<String> = formatted.into_iter().flatten().collect();
    if sort == SortMode::ValueSort {
        values.sort();
    }
    values
}

/// Compares actual values with the expectation; returns a description of the mismatch.
pub fn check(values: &[String], expected: &Expected) -> Result<(), String> {
    match expected {
        Expected::Hash { count, md5 } => {
            let actual = hash_values(values);
            if values.len() == *count && actual == *md5 {
                Ok(())
            } else {
                Err(format!(
                    "expected {count} values hashing to {md5}, got {} values hashing to {actual}",
                    values.len()
                ))
            }
        }
        Expected::Values(lines) => {
            if values == lines.as_slice() {
                return Ok(());
            }
            let shown: Vec<&String> = values.iter().take(8).collect();
            let expected: Vec<&String> = lines.iter().take(8).collect();
            Err(format!(
                "expected {} values {:?}{}, got {} values {:?}{}",
                lines.len(),
                expected,
                if lines.len() > 8 { "..." } else { "" },
                values.len(),
                shown,
                if values.len() > 8 { "..." } else { "" },
            ))
        }
    }
}

/// Options for running corpus files.
#[derive(Debug, Clone)]
pub struct Options {
    /// The engine labels `skipif`/`onlyif` match; the corpus uses `postgresql`.
    pub labels: Vec<String>,
    /// The longest a single record may run before it is cancelled and counted as failed.
    pub timeout: Duration,
    /// How many failures per file to keep for the report.
    pub keep_failures: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            labels: vec!["postgresql".to_string()],
            timeout: Duration::from_secs(60),
            keep_failures: 3,
        }
    }
}

/// One failed record.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The record's 1-based line.
    pub line: usize,
    /// The SQL, shortened.
    pub sql: String,
    /// Why it failed.
    pub reason: String,
}

/// The outcome of one corpus file.
#[derive(Debug, Clone, Default)]
pub struct FileResult {
    /// The file's name relative to the corpus root.
    pub name: String,
    /// Records that ran and matched.
    pub passed: usize,
    /// Records that ran and did not match, or could not run.
    pub failed: usize,
    /// Records skipped by conditions or after `halt`.
    pub skipped: usize,
    /// The first failures, up to [`Options::keep_failures`].
    pub failures: Vec<Failure>,
    /// Wall time.
    pub elapsed: Duration,
}

impl FileResult {
    /// Passed records over passed plus failed, or 1 when nothing ran.
    pub fn pass_rate(&self) -> f64 {
        let ran = self.passed + self.failed;
        if ran == 0 {
            1.0
        } else {
            self.passed as f64 / ran as f64
        }
    }

    fn fail(&mut self, keep: usize, line: usize, sql: &str, reason: String) {
        self.failed += 1;
        if self.failures.len() < keep {
            let mut sql: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
            if sql.len() > 200 {
                let cut = (0..=200)
                    .rev()
                    .find(|&i| sql.is_char_boundary(i))
                    .unwrap_or(0);
                sql.truncate(cut);
                sql.push_str("...");
            }
            self.failures.push(Failure { line, sql, reason });
        }
    }
}

/// What a statement did.
enum Outcome {
    /// It ran; these are its rows (none for a statement without a result set).
    Rows(Vec<Vec<Option<String>>>),
    /// The server reported an error.
    Error(String),
    /// It ran longer than the timeout and was cancelled.
    Timeout,
    /// The connection is gone.
    Broken(String),
}

/// A corpus connection that reconnects after the server drops it.
struct Session {
    config: tokio_postgres::Config,
    client: tokio_postgres::Client,
}

impl Session {
    async fn open(config: &tokio_postgres::Config) -> Result<Self, Error> {
        Ok(Session {
            config: config.clone(),
            client: crate::connect_config(config).await?,
        })
    }

    async fn execute(&mut self, sql: &str, timeout: Duration) -> Outcome {
        if self.client.is_closed() {
            match crate::connect_config(&self.config).await {
                Ok(client) => self.client = client,
                Err(e) => return Outcome::Broken(e.to_string()),
            }
        }
        let run = self.client.simple_query(sql);
        match tokio::time::timeout(timeout, run).await {
            Ok(Ok(messages)) => Outcome::Rows(
                messages
                    .iter()
                    .filter_map(|m| match m {
                        SimpleQueryMessage::Row(row) => Some(
                            (0..row.len())
                                .map(|i| row.get(i).map(str::to_string))
                                .collect(),
                        ),
                        _ => None,
                    })
                    .collect(),
            ),
            Ok(Err(e)) if e.as_db_error().is_some() => Outcome::Error(DbError::from(e).to_string()),
            Ok(Err(e)) if self.client.is_closed() => Outcome::Broken(crate::error_chain(&e)),
            Ok(Err(e)) => Outcome::Error(DbError::from(e).to_string()),
            Err(_) => {
                let token = self.client.cancel_token();
                if token.cancel_query(tokio_postgres::NoTls).await.is_err() {
                    // Cancellation is not supported or failed: drop the connection so the next
                    // record starts on a fresh one.
                    if let Ok(client) = crate::connect_config(&self.config).await {
                        self.client = client;
                    }
                }
                Outcome::Timeout
            }
        }
    }
}

/// The names of the tables and views a CREATE statement makes, as (is_view, name).
fn created_object(sql: &str) -> Option<(bool, String)> {
    let upper = sql.to_ascii_uppercase();
    let words: Vec<&str> = upper.split_whitespace().collect();
    let orig: Vec<&str> = sql.split_whitespace().collect();
    if words.first() != Some(&"CREATE") {
        return None;
    }
    let mut k = 1;
    while matches!(
        words.get(k),
        Some(&"TEMP") | Some(&"TEMPORARY") | Some(&"OR") | Some(&"REPLACE")
    ) {
        k += 1;
    }
    let is_view = match words.get(k) {
        Some(&"TABLE") => false,
        Some(&"VIEW") => true,
        _ => return None,
    };
    k += 1;
    if words.get(k) == Some(&"IF") {
        k += 3;
    }
    let name: String = orig
        .get(k)?
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.' || *c == '"')
        .collect();
    (!name.is_empty()).then_some((is_view, name))
}

/// Drops the given objects, views first, ignoring errors.
async fn drop_objects(session: &mut Session, objects: &[(bool, String)], timeout: Duration) {
    for (_, name) in objects.iter().rev().filter(|(v, _)| *v) {
        session
            .execute(&format!("DROP VIEW IF EXISTS {name}"), timeout)
            .await;
    }
    for (_, name) in objects.iter().rev().filter(|(v, _)| !*v) {
        session
            .execute(&format!("DROP TABLE IF EXISTS {name}"), timeout)
            .await;
    }
}

/// Runs one corpus file against the server at `config`.
pub async fn run_file(
    config: &tokio_postgres::Config,
    path: &Path,
    name: &str,
    options: &Options,
) -> Result<FileResult, Error> {
    let started = Instant::now();
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let records = parse(&String::from_utf8_lossy(&bytes));
    let mut result = FileResult {
        name: name.to_string(),
        ..FileResult::default()
    };
    let mut session = match Session::open(config).await {
        Ok(session) => session,
        Err(e) => {
            // The server is unreachable: every record the file would run fails.
            let reason = e.to_string();
            for record in &records {
                if let Record::Statement {
                    line,
                    sql,
                    conditions,
                    ..
                }
                | Record::Query {
                    line,
                    sql,
                    conditions,
                    ..
                } = record
                {
                    if selected(conditions, &options.labels) {
                        result.fail(options.keep_failures, *line, sql, reason.clone());
                    } else {
                        result.skipped += 1;
                    }
                }
            }
            result.elapsed = started.elapsed();
            return Ok(result);
        }
    };

    // Objects the file may create, dropped first in case an earlier run left them behind.
    let mut objects: Vec<(bool, String)> = Vec::new();
    for record in &records {
        if let Record::Statement { sql, .. } = record {
            if let Some(obj) = created_object(sql) {
                if !objects.contains(&obj) {
                    objects.push(obj);
                }
            }
        }
    }
    drop_objects(&mut session, &objects, options.timeout).await;

    let keep = options.keep_failures;
    let mut halted = false;
    let mut broken: Option<String> = None;
    for record in &records {
        if halted {
            if matches!(record, Record::Statement { .. } | Record::Query { .. }) {
                result.skipped += 1;
            }
            continue;
        }
        if let Some(reason) = &broken {
            if let Record::Statement { line, sql, .. } | Record::Query { line, sql, .. } = record {
                result.fail(keep, *line, sql, format!("connection lost: {reason}"));
            }
            continue;
        }
        match record {
            Record::HashThreshold { .. } => {}
            Record::Halt { conditions, .. } => {
                if selected(conditions, &options.labels) {
                    halted = true;
                }
            }
            Record::Invalid { line, message } => result.fail(keep, *line, "", message.clone()),
            Record::Statement {
                line,
                conditions,
                expect_error,
                sql,
            } => {
                if !selected(conditions, &options.labels) {
                    result.skipped += 1;
                    continue;
                }
                match (session.execute(sql, options.timeout).await, expect_error) {
                    (Outcome::Rows(_), false) | (Outcome::Error(_), true) => result.passed += 1,
                    (Outcome::Rows(_), true) => result.fail(
                        keep,
                        *line,
                        sql,
                        "statement succeeded, expected an error".into(),
                    ),
                    (Outcome::Error(e), false) => result.fail(keep, *line, sql, e),
                    (Outcome::Timeout, _) => result.fail(
                        keep,
                        *line,
                        sql,
                        format!("timed out after {:?}", options.timeout),
                    ),
                    (Outcome::Broken(e), _) => {
                        result.fail(keep, *line, sql, format!("connection lost: {e}"));
                        broken = Some(e);
                    }
                }
            }
            Record::Query {
                line,
                conditions,
                types,
                sort,
                sql,
                expected,
            } => {
                if !selected(conditions, &options.labels) {
                    result.skipped += 1;
                    continue;
                }
                match session.execute(sql, options.timeout).await {
                    Outcome::Rows(rows) => {
                        let width = types.chars().count();
                        if let Some(bad) = rows.iter().find(|r| r.len() != width) {
                            result.fail(
                                keep,
                                *line,
                                sql,
                                format!("expected {width} columns, got {}", bad.len()),
                            );
                            continue;
                        }
                        let values = result_values(&rows, types, *sort);
                        match check(&values, expected) {
                            Ok(()) => result.passed += 1,
                            Err(reason) => result.fail(keep, *line, sql, reason),
                        }
                    }
                    Outcome::Error(e) => result.fail(keep, *line, sql, e),
                    Outcome::Timeout => result.fail(
                        keep,
                        *line,
                        sql,
                        format!("timed out after {:?}", options.timeout),
                    ),
                    Outcome::Broken(e) => {
                        result.fail(keep, *line, sql, format!("connection lost: {e}"));
                        broken = Some(e);
                    }
                }
            }
        }
    }

    if broken.is_none() {
        drop_objects(&mut session, &objects, options.timeout).await;
    }
    result.elapsed = started.elapsed();
    Ok(result)
}

/// A per-file pass-rate baseline: name, passed, failed, skipped.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// The entries, in file order.
    pub entries: Vec<FileResult>,
}

impl Baseline {
    /// Reads a TSV baseline as written by [`write_tsv`]. Lines starting with `#` and blank lines
    /// are ignored; so is a header line starting with `file`.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("file\t") {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            let num = |k: usize| -> Result<usize, Error> {
                cols.get(k)
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| Error::Parse {
                        path: path.to_path_buf(),
                        line: i + 1,
                        message: format!("column {} must be a count", k + 1),
                    })
            };
            entries.push(FileResult {
                name: cols[0].to_string(),
                passed: num(1)?,
                failed: num(2)?,
                skipped: num(3).unwrap_or(0),
                ..FileResult::default()
            });
        }
        Ok(Baseline { entries })
    }

    /// Returns the baseline files that are not among `results` (not run this time).
    pub fn not_run(&self, results: &[FileResult]) -> Vec<String> {
        self.entries
            .iter()
            .filter(|base| !results.iter().any(|r| r.name == base.name))
            .map(|base| base.name.clone())
            .collect()
    }

    /// Returns a line for every file whose pass rate dropped below the baseline's. Files of the
    /// baseline that did not run are not regressions; see [`Baseline::not_run`].
    pub fn regressions(&self, results: &[FileResult]) -> Vec<String> {
        let mut out = Vec::new();
        for base in &self.entries {
            match results.iter().find(|r| r.name == base.name) {
                Some(now) if now.pass_rate() + 1e-9 < base.pass_rate() => out.push(format!(
                    "{}: pass rate {:.2}% ({} of {}) is below the baseline {:.2}% ({} of {})",
                    base.name,
                    now.pass_rate() * 100.0,
                    now.passed,
                    now.passed + now.failed,
                    base.pass_rate() * 100.0,
                    base.passed,
                    base.passed + base.failed
                )),
                Some(_) | None => {}
            }
        }
        out
    }
}

/// Writes results as TSV: `file passed failed skipped total pass_rate`.
pub fn write_tsv(results: &[FileResult], header_comment: &str) -> String {
    let mut out = String::new();
    for line in header_comment.lines() {
        let _ = writeln!(out, "# {line}");
    }
    out.push_str("file\tpassed\tfailed\tskipped\ttotal\tpass_rate\n");
    for r in results {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{:.4}",
            r.name,
            r.passed,
            r.failed,
            r.skipped,
            r.passed + r.failed + r.skipped,
            r.pass_rate()
        );
    }
    out
}

/// Writes results as JSON (an array of objects with the TSV's fields and the first failures).
pub fn write_json(results: &[FileResult]) -> String {
    fn esc(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
    let mut out = String::from("[\n");
    for (i, r) in results.iter().enumerate() {
        let failures: Vec<String> = r
            .failures
            .iter()
            .map(|f| {
                format!(
                    "{{\"line\": {}, \"sql\": {}, \"reason\": {}}}",
                    f.line,
                    esc(&f.sql),
                    esc(&f.reason)
                )
            })
            .collect();
        let _ = write!(
            out,
            "  {{\"file\": {}, \"passed\": {}, \"failed\": {}, \"skipped\": {}, \"pass_rate\": {:.4}, \"seconds\": {:.3}, \"failures\": [{}]}}",
            esc(&r.name),
            r.passed,
            r.failed,
            r.skipped,
            r.pass_rate(),
            r.elapsed.as_secs_f64(),
            failures.join(", ")
        );
        out.push_str(if i + 1 < results.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        "hash-threshold 8\r\n\r\nstatement ok\r\nCREATE TABLE t1(a INTEGER, b TEXT)\r\n\r\n\
# a comment\n\
skipif mysql # not compatible\n\
query IT rowsort label-1\n\
SELECT a, b\n  FROM t1\n----\n1\nx\n2\n(empty)\n\n\
onlyif mssql\nhalt\n\n\
query I nosort\nSELECT * FROM t1\n----\n30 values hashing to 3c13dee48d9356ae19af2515e05e6b54\n\n\
statement error\nSELECT nope\n\n\
query R valuesort\nSELECT 1\n";

    #[test]
    fn parses_records_conditions_and_crlf() {
        let records = parse(SAMPLE);
        assert_eq!(records.len(), 7, "{records:#?}");
        assert_eq!(
            records[0],
            Record::HashThreshold {
                line: 1,
                threshold: 8
            }
        );
        assert_eq!(
            records[1],
            Record::Statement {
                line: 3,
                conditions: vec![],
                expect_error: false,
                sql: "CREATE TABLE t1(a INTEGER, b TEXT)".into()
            }
        );
        let Record::Query {
            conditions,
            types,
            sort,
            sql,
            expected,
            ..
        } = &records[2]
        else {
            panic!("expected a query: {:?}", records[2]);
        };
        assert_eq!(conditions, &vec![Condition::SkipIf("mysql".into())]);
        assert_eq!(types, "IT");
        assert_eq!(*sort, SortMode::RowSort);
        assert_eq!(sql, "SELECT a, b\n  FROM t1");
        assert_eq!(
            expected,
            &Expected::Values(vec!["1".into(), "x".into(), "2".into(), "(empty)".into()])
        );
        assert_eq!(
            records[3],
            Record::Halt {
                line: 18,
                conditions: vec![Condition::OnlyIf("mssql".into())]
            }
        );
        let Record::Query { expected, .. } = &records[4] else {
            panic!()
        };
        assert_eq!(
            expected,
            &Expected::Hash {
                count: 30,
                md5: "3c13dee48d9356ae19af2515e05e6b54".into()
            }
        );
        assert!(matches!(
            records[5],
            Record::Statement {
                expect_error: true,
                ..
            }
        ));
        let Record::Query { sort, expected, .. } = &records[6] else {
            panic!()
        };
        assert_eq!(*sort, SortMode::ValueSort);
        assert_eq!(expected, &Expected::Values(vec![]));
    }

    #[test]
    fn conditions_select_by_label() {
        let pg = vec!["postgresql".to_string()];
        assert!(selected(&[], &pg));
        assert!(selected(&[Condition::SkipIf("mysql".into())], &pg));
        assert!(!selected(&[Condition::SkipIf("postgresql".into())], &pg));
        assert!(!selected(&[Condition::OnlyIf("mssql".into())], &pg));
        assert!(selected(&[Condition::OnlyIf("postgresql".into())], &pg));
    }

    #[test]
    fn values_format_by_type_letter() {
        assert_eq!(format_value(None, 'I'), "NULL");
        assert_eq!(format_value(Some("42"), 'I'), "42");
        assert_eq!(format_value(Some("-7.9"), 'I'), "-7");
        assert_eq!(format_value(Some("t"), 'I'), "1");
        assert_eq!(format_value(Some("12"), 'R'), "12.000");
        assert_eq!(format_value(Some("2.0005"), 'R'), "2.001");
        assert_eq!(format_value(Some("-0.0001"), 'R'), "0.000");
        assert_eq!(format_value(Some(""), 'T'), "(empty)");
        assert_eq!(format_value(Some("a\tb"), 'T'), "a@b");
    }

    #[test]
    fn sorting_and_hashing_follow_the_reference() {
        let rows = vec![
            vec![Some("2".into()), Some("b".into())],
            vec![Some("10".into()), None],
            vec![Some("1".into()), Some("c".into())],
        ];
        assert_eq!(
            result_values(&rows, "IT", SortMode::RowSort),
            vec!["1", "c", "10", "NULL", "2", "b"]
        );
        assert_eq!(
            result_values(&rows, "IT", SortMode::ValueSort),
            vec!["1", "10", "2", "NULL", "b", "c"]
        );
        assert_eq!(
            result_values(&rows, "IT", SortMode::NoSort),
            vec!["2", "b", "10", "NULL", "1", "c"]
        );
        // md5("1\n2\n") computed independently with md5sum.
        assert_eq!(
            hash_values(&["1".into(), "2".into()]),
            "6ddb4095eb719e2a9f0a3f95677d24e0"
        );
        assert!(check(
            &["1".into(), "2".into()],
            &Expected::Values(vec!["1".into(), "2".into()])
        )
        .is_ok());
        assert!(check(&["1".into()], &Expected::Values(vec!["2".into()])).is_err());
    }

    #[test]
    fn created_objects_are_found() {
        assert_eq!(
            created_object("CREATE TABLE t1(a INT)"),
            Some((false, "t1".into()))
        );
        assert_eq!(
            created_object("create table if not exists tab0 (x int)"),
            Some((false, "tab0".into()))
        );
        assert_eq!(
            created_object("CREATE VIEW view_1 AS SELECT 1"),
            Some((true, "view_1".into()))
        );
        assert_eq!(
            created_object("CREATE TEMP VIEW v2 AS SELECT 1"),
            Some((true, "v2".into()))
        );
        assert_eq!(created_object("CREATE INDEX i1 ON t1(a)"), None);
    }

    #[test]
    fn baselines_flag_drops_only() {
        let base = Baseline {
            entries: vec![
                FileResult {
                    name: "a".into(),
                    passed: 9,
                    failed: 1,
                    ..Default::default()
                },
                FileResult {
                    name: "b".into(),
                    passed: 5,
                    failed: 5,
                    ..Default::default()
                },
                FileResult {
                    name: "c".into(),
                    passed: 1,
                    failed: 0,
                    ..Default::default()
                },
            ],
        };
        let now = vec![
            FileResult {
                name: "a".into(),
                passed: 8,
                failed: 2,
                ..Default::default()
            },
            FileResult {
                name: "b".into(),
                passed: 6,
                failed: 4,
                ..Default::default()
            },
        ];
        let regressions = base.regressions(&now);
        assert_eq!(regressions.len(), 1, "{regressions:?}");
        assert!(
            regressions[0].starts_with("a: pass rate 80.00%"),
            "{regressions:?}"
        );
        assert_eq!(base.not_run(&now), vec!["c".to_string()]);
        let tsv = write_tsv(&now, "made by a test");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tsv");
        std::fs::write(&path, tsv).unwrap();
        let read = Baseline::read(&path).unwrap();
        assert_eq!(read.entries.len(), 2);
        assert_eq!(read.entries[1].passed, 6);
        assert!(read.regressions(&now).is_empty());
    }
}
