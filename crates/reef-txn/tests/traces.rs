//! Script-style trace tests of the MVCC commands.
//!
//! Each `tests/traces/*.trace` file is a list of commands, each followed by its output: inline
//! after ` -> ` when it is one line, or on the following lines indented by two spaces. The test
//! replays the commands on a fresh RocksDB engine and compares the regenerated file with the
//! stored one. Run with `REEF_TRACE_UPDATE=1` to rewrite the files with the actual output.
//!
//! Commands (timestamps are integers, or `<N>ms` for `compose_ts(N, 0)`):
//!
//! ```text
//! prewrite start=TS primary=KEY [ttl=MS] [check=TS] k=v del:k ins:k=v lock:k
//! onepc start=TS commit=TS [check=TS] k=v del:k ins:k=v lock:k
//! commit KEY... start=TS commit=TS
//! rollback KEY... start=TS
//! check_txn_status primary=KEY start=TS current=TS
//! peek_txn_status primary=KEY start=TS current=TS    (the status a read finds, no command)
//! resolve KEY... start=TS [commit=TS]
//! get KEY @TS
//! scan START END @TS [limit=N]        (END `-` means unbounded)
//! rscan START END @TS [limit=N]
//! gc safe=TS
//! dump                                 (every lock and write record)
//! ```

use std::sync::Arc;

use reef_common::{codec, compose_ts, Timestamp};
use reef_storage::{Cf, Engine, EngineOptions, RocksEngine};
use reef_txn::{
    Command, CommandResponse, KvPair, Lock, LockKind, Mutation, MutationOp, MvccStore, RawBatch,
    TxnError, TxnStatus, WriteRef,
};

fn parse_ts(s: &str) -> Timestamp {
    match s.strip_suffix("ms") {
        Some(ms) => compose_ts(ms.parse().expect("timestamp"), 0),
        None => s.parse().unwrap_or_else(|_| panic!("bad timestamp {s:?}")),
    }
}

/// Formats a timestamp the way traces write it: `<N>ms` (plus `+logical`) for hybrid ones.
fn show_ts(ts: Timestamp) -> String {
    let (ms, logical) = (reef_common::ts_physical_ms(ts), reef_common::ts_logical(ts));
    match (ms, logical) {
        (0, _) => ts.to_string(),
        (_, 0) => format!("{ms}ms"),
        _ => format!("{ms}ms+{logical}"),
    }
}

fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

fn show_error(err: &TxnError) -> String {
    format!("error {}: {}", err.code(), err)
}

fn show_kind(kind: LockKind) -> &'static str {
    match kind {
        LockKind::Put => "put",
        LockKind::Delete => "delete",
        LockKind::Lock => "lock",
    }
}

/// The arguments of one command: positional words and `name=value` options.
struct Args {
    words: Vec<String>,
    options: Vec<(String, String)>,
}

const OPTION_NAMES: [&str; 8] = [
    "start", "primary", "ttl", "check", "commit", "current", "limit", "safe",
];

impl Args {
    fn parse(tokens: &[&str]) -> Args {
        let mut args = Args {
            words: Vec::new(),
            options: Vec::new(),
        };
        for token in tokens {
            match token.split_once('=') {
                Some((name, value)) if OPTION_NAMES.contains(&name) => {
                    args.options.push((name.to_string(), value.to_string()))
                }
                _ => args.words.push(token.to_string()),
            }
        }
        args
    }

    fn opt(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn ts(&self, name: &str) -> Timestamp {
        parse_ts(self.opt(name).unwrap_or_else(|| panic!("missing {name}=")))
    }

    fn read_ts(&self) -> Timestamp {
        let word = self
            .words
            .iter()
            .find(|w| w.starts_with('@'))
            .expect("missing @ts");
        parse_ts(&word[1..])
    }

    fn keys(&self) -> Vec<Vec<u8>> {
        self.words
            .iter()
            .filter(|w| !w.starts_with('@'))
            .map(|w| w.as_bytes().to_vec())
            .collect()
    }
}

/// The mutations a `prewrite` or `onepc` command lists: `k=v`, `del:k`, `ins:k=v`, `lock:k`,
/// each checked against `check=` if given.
fn mutations(args: &Args) -> Vec<Mutation> {
    let check = args.opt("check").map(parse_ts);
    args.words
        .iter()
        .map(|w| {
            let (op, key) = if let Some(k) = w.strip_prefix("del:") {
                (MutationOp::Delete, k)
            } else if let Some(k) = w.strip_prefix("lock:") {
                (MutationOp::Lock, k)
            } else if let Some(kv) = w.strip_prefix("ins:") {
                let (k, v) = kv.split_once('=').expect("ins:k=v");
                (MutationOp::Insert(v.as_bytes().to_vec()), k)
            } else {
                let (k, v) = w.split_once('=').expect("k=v");
                (MutationOp::Put(v.as_bytes().to_vec()), k)
            };
            Mutation {
                op,
                key: key.as_bytes().to_vec(),
                conflict_ts: check,
            }
        })
        .collect()
}

fn dump(engine: &dyn Engine) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = engine.cursor(Cf::Lock, None, None);
    cursor.seek_to_first();
    while cursor.valid() {
        let key = codec::decode_bytes(&mut &cursor.key()[..]).unwrap();
        let lock = Lock::decode(cursor.value()).unwrap();
        let value = if lock.kind == LockKind::Put {
            format!(" value={}", show(&lock.value))
        } else {
            String::new()
        };
        out.push(format!(
            "lock {} {} start={} primary={} ttl={}{}",
            show(&key),
            show_kind(lock.kind),
            show_ts(lock.start_ts),
            show(&lock.primary),
            lock.ttl_ms,
            value
        ));
        cursor.next();
    }
    let mut cursor = engine.cursor(Cf::Write, None, None);
    cursor.seek_to_first();
    while cursor.valid() {
        let mut raw = cursor.key();
        let key = codec::decode_bytes(&mut raw).unwrap();
        let ts = codec::decode_u64_desc(&mut raw).unwrap();
        let write = WriteRef::decode(cursor.value()).unwrap();
        let kind = format!("{:?}", write.kind).to_lowercase();
        let value = if write.value.is_empty() {
            String::new()
        } else {
            format!(" value={}", show(write.value))
        };
        out.push(format!(
            "write {}@{} {} start={}{}",
            show(&key),
            show_ts(ts),
            kind,
            show_ts(write.start_ts),
            value
        ));
        cursor.next();
    }
    let mut cursor = engine.cursor(Cf::Default, None, None);
    cursor.seek_to_first();
    while cursor.valid() {
        let key = codec::decode_bytes(&mut &cursor.key()[..]).unwrap();
        out.push(format!("raw {}={}", show(&key), show(cursor.value())));
        cursor.next();
    }
    if out.is_empty() {
        out.push("(empty)".to_string());
    }
    out
}

/// Shows a scan's outcome, one `key=value` line per pair.
fn show_pairs(result: Result<Vec<KvPair>, TxnError>) -> Vec<String> {
    match result {
        Ok(pairs) if pairs.is_empty() => vec!["(empty)".to_string()],
        Ok(pairs) => pairs
            .iter()
            .map(|(k, v)| format!("{}={}", show(k), show(v)))
            .collect(),
        Err(err) => vec![show_error(&err)],
    }
}

/// Shows a transaction's status.
fn show_status(status: TxnStatus) -> String {
    match status {
        TxnStatus::Committed(ts) => format!("committed {}", show_ts(ts)),
        TxnStatus::Locked { ttl_ms } => format!("locked ttl={ttl_ms}"),
        TxnStatus::RolledBack => "rolled back".to_string(),
    }
}

fn run_command(store: &MvccStore, line: &str) -> Vec<String> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let args = Args::parse(&tokens[1..]);
    let command = match tokens[0] {
        "prewrite" => {
            let mutations = mutations(&args);
            Command::Prewrite {
                mutations,
                primary: args.opt("primary").expect("primary=").as_bytes().to_vec(),
                start_ts: args.ts("start"),
                lock_ttl_ms: args.opt("ttl").map_or(3000, |t| t.parse().unwrap()),
                min_commit_ts: 0,
            }
        }
        "onepc" => Command::OnePc {
            mutations: mutations(&args),
            start_ts: args.ts("start"),
            commit_ts: args.ts("commit"),
        },
        "commit" => Command::Commit {
            keys: args.keys(),
            start_ts: args.ts("start"),
            commit_ts: args.ts("commit"),
        },
        "rollback" => Command::Rollback {
            keys: args.keys(),
            start_ts: args.ts("start"),
        },
        "check_txn_status" => Command::CheckTxnStatus {
            primary: args.opt("primary").expect("primary=").as_bytes().to_vec(),
            lock_ts: args.ts("start"),
            current_ts: args.ts("current"),
        },
        "resolve" => Command::ResolveLock {
            start_ts: args.ts("start"),
            commit_ts: args.opt("commit").map(parse_ts),
            keys: args.keys(),
        },
        "gc" => Command::Gc {
            safe_point: args.ts("safe"),
            start: Vec::new(),
            end: Vec::new(),
            limit: 1000,
        },
        "peek_txn_status" => {
            let primary = args.opt("primary").expect("primary=").as_bytes().to_vec();
            let peeked = store.peek_txn_status(&primary, args.ts("start"), args.ts("current"));
            return vec![match peeked {
                Ok(Some(status)) => show_status(status),
                Ok(None) => "(needs the command)".to_string(),
                Err(err) => show_error(&err),
            }];
        }
        "get" => {
            let key = &args.keys()[0];
            return vec![match store.get(key, args.read_ts()) {
                Ok(Some(value)) => show(&value),
                Ok(None) => "(none)".to_string(),
                Err(err) => show_error(&err),
            }];
        }
        "scan" | "rscan" => {
            let keys = args.keys();
            let end = if keys[1] == b"-" {
                Vec::new()
            } else {
                keys[1].clone()
            };
            let limit = args.opt("limit").map_or(usize::MAX, |l| l.parse().unwrap());
            let result = if tokens[0] == "scan" {
                store.scan(&keys[0], &end, args.read_ts(), limit)
            } else {
                store.scan_reverse(&keys[0], &end, args.read_ts(), limit)
            };
            return show_pairs(result);
        }
        // raw [if:k=v | if:k=- ...] [k=v | del:k ...]
        "raw" => {
            let mut raw = RawBatch::default();
            for word in &args.words {
                if let Some(cond) = word.strip_prefix("if:") {
                    let (k, v) = cond.split_once('=').expect("if:k=v");
                    let v = (v != "-").then(|| v.as_bytes().to_vec());
                    raw = raw.expect(k.as_bytes(), v);
                } else if let Some(k) = word.strip_prefix("del:") {
                    raw = raw.delete(k.as_bytes());
                } else {
                    let (k, v) = word.split_once('=').expect("k=v");
                    raw = raw.put(k.as_bytes(), v.as_bytes());
                }
            }
            Command::Raw(raw)
        }
        "raw_get" => {
            return vec![match store.raw_get(&args.keys()[0]) {
                Ok(Some(value)) => show(&value),
                Ok(None) => "(none)".to_string(),
                Err(err) => show_error(&err),
            }];
        }
        "raw_scan" => {
            let keys = args.keys();
            let end = if keys[1] == b"-" {
                Vec::new()
            } else {
                keys[1].clone()
            };
            let limit = args.opt("limit").map_or(usize::MAX, |l| l.parse().unwrap());
            return show_pairs(store.raw_scan(&keys[0], &end, limit));
        }
        "dump" => return dump(store.engine().as_ref()),
        other => panic!("unknown trace command {other:?}"),
    };
    vec![match store.apply(&command) {
        Ok(CommandResponse::Done) => "ok".to_string(),
        Ok(CommandResponse::TxnStatus(status)) => show_status(status),
        Ok(CommandResponse::Gc(p)) => {
            format!("keys={} deleted={}", p.keys_scanned, p.versions_deleted)
        }
        Ok(CommandResponse::RawMismatch { key, current }) => format!(
            "mismatch {}={}",
            show(&key),
            current.map_or("(none)".to_string(), |v| show(&v))
        ),
        Err(err) => show_error(&err),
    }]
}

/// Replays a trace and returns the regenerated text.
fn replay(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let engine: Arc<dyn Engine> =
        Arc::new(RocksEngine::open(dir.path(), &EngineOptions::default()).unwrap());
    let store = MvccStore::new(engine);
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("  ") {
            continue; // Old multi-line output.
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let command = trimmed.split(" -> ").next().unwrap().trim();
        let output = run_command(&store, command);
        if output.len() == 1 {
            out.push_str(&format!("{command} -> {}\n", output[0]));
        } else {
            out.push_str(command);
            out.push('\n');
            for line in output {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    out
}

#[test]
fn traces() {
    // The runtime variable wins over the compile-time one: a build cache shared between clones
    // must not send the test to another clone's files.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("tests/traces");
    let update = std::env::var_os("REEF_TRACE_UPDATE").is_some();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "trace"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no traces in {}", dir.display());
    let mut failures = Vec::new();
    for path in paths {
        let expected = std::fs::read_to_string(&path).unwrap();
        let actual = replay(&expected);
        if actual != expected {
            if update {
                std::fs::write(&path, &actual).unwrap();
            } else {
                failures.push(format!(
                    "{}:\n--- expected\n{expected}\n+++ actual\n{actual}",
                    path.display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "trace mismatches:\n{}",
        failures.join("\n")
    );
}
