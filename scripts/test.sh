#!/usr/bin/env bash
# Builds reefdb and runs every test: the SQLite sqllogictest corpus against a reef server
# (compared with tests/conformance/reef-baseline.tsv), the driver tests (psycopg 3, node-postgres
# and pgJDBC against a reef server, scripts/drivers.sh), then the workspace's tests (unit,
# integration, the tests/sql golden files, crash and client tests) and the fault tests. Exits
# non-zero on any failure.
#
#   scripts/test.sh
#
# Environment:
#   CARGO_TARGET_DIR     build cache (default /var/tmp/reef-target)
#   REEF_CORPUS_DIR      the corpus (default ../shared/sqllogictest beside the repository)
#   REEF_CORPUS_PATHS    space-separated files/folders inside it to run (default: every file)
#   REEF_CORPUS_TIMEOUT  per-record timeout in seconds (default 30)
#   REEF_SKIP_CORPUS=1   skip the corpus step
#   REEF_SKIP_DRIVERS=1  skip the driver tests (reported as NOT RUN in the summary)
#   REEF_SKIP_JEPSEN=1   skip the fault tests (reported as NOT RUN in the summary)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REEF_ROOT"

started=$SECONDS
"$REEF_ROOT/scripts/ensure-deps.sh" test
need_cargo

info "building (debug) into $CARGO_TARGET_DIR"
cargo build --workspace --bins
info "build done after $((SECONDS - started))s"

failures=()
skipped=()

# 1. Corpus conformance against a reef server.
corpus_dir="${REEF_CORPUS_DIR:-$REEF_ROOT/../shared/sqllogictest}"
if [[ "${REEF_SKIP_CORPUS:-0}" == 1 ]]; then
  info "corpus: skipped (REEF_SKIP_CORPUS=1)"
elif [[ ! -d "$corpus_dir" ]]; then
  info "corpus: NOTICE: $corpus_dir does not exist; skipping the sqllogictest corpus conformance check"
else
  corpus_dir="$(cd "$corpus_dir" && pwd)"
  paths=()
  default_paths="."
  for p in ${REEF_CORPUS_PATHS:-$default_paths}; do
    paths+=("$corpus_dir/$p")
  done
  work="$(mktemp -d /tmp/reef-corpus.XXXXXX)"
  port="$(free_port)"
  info "corpus: starting reef on 127.0.0.1:$port (data $work/data, log $work/reef.log)"
  REEF_PID=
  if start_reef "$CARGO_TARGET_DIR/debug/reef" "$work/data" "$port" "$work/reef.log"; then
    trap 'stop_pid "${REEF_PID:-}"' EXIT
    info "corpus: running ${REEF_CORPUS_PATHS:-$default_paths} from $corpus_dir"
    if "$CARGO_TARGET_DIR/debug/slt-corpus" \
      --url "postgresql://reef@127.0.0.1:$port/reef" \
      --root "$corpus_dir" \
      --timeout "${REEF_CORPUS_TIMEOUT:-30}" \
      --show-failures 0 \
      --summary "$work/summary.tsv" \
      --baseline "$REEF_ROOT/tests/conformance/reef-baseline.tsv" \
      "${paths[@]}"; then
      info "corpus: summary written to $work/summary.tsv"
    else
      failures+=("corpus conformance (see above; summary $work/summary.tsv)")
    fi
    stop_pid "$REEF_PID"
    REEF_PID=
    trap - EXIT
  else
    failures+=("corpus conformance: reef did not start (log $work/reef.log)")
  fi
fi

# 2. Driver tests: psycopg 3, node-postgres and pgJDBC used as applications use them, against a
# fresh reef server with TLS (scripts/drivers.sh installs what they need; tests/drivers/README.md).
if [[ "${REEF_SKIP_DRIVERS:-0}" == 1 ]]; then
  info "drivers: SKIPPED (REEF_SKIP_DRIVERS=1)"
  skipped+=("driver tests (REEF_SKIP_DRIVERS=1)")
elif ! "$REEF_ROOT/scripts/drivers.sh" "$CARGO_TARGET_DIR/debug/reef"; then
  failures+=("driver tests (see above; scripts/drivers.sh to rerun them alone)")
fi

# 3. Doc tests (nextest does not run them).
info "doc tests"
if ! cargo test --workspace --doc --quiet; then
  failures+=("doc tests")
fi

# 4. The workspace's tests; the runner's summary is the last thing printed on success.
if cargo nextest --version >/dev/null 2>&1; then
  info "workspace tests (cargo nextest)"
  if ! cargo nextest run --workspace --no-fail-fast --failure-output final; then
    failures+=("workspace tests")
  fi
else
  info "workspace tests (cargo test; install cargo-nextest for a shorter summary)"
  if ! cargo test --workspace --no-fail-fast; then
    failures+=("workspace tests")
  fi
fi

# 5. Fault tests: each workload twice for REEF_JEPSEN_TIME seconds (60 by default), once with a
# fixed seed and once with a random one (printed, to replay with scripts/jepsen.sh --seed N),
# against clusters of real reef processes in network namespaces of their own.
if [[ "${REEF_SKIP_JEPSEN:-0}" == 1 ]]; then
  info "jepsen: SKIPPED (REEF_SKIP_JEPSEN=1)"
  skipped+=("fault tests (REEF_SKIP_JEPSEN=1)")
else
  jepsen_out="$(mktemp -d /tmp/reef-jepsen.XXXXXX)"
  jepsen_time="${REEF_JEPSEN_TIME:-60}"
  # workload:nodes:seed ("random": a fresh seed each run).
  for run in bank:3:1 bank:5:random register:3:2 register:3:random append:3:3 append:5:random; do
    IFS=: read -r w nodes seed <<<"$run"
    [[ "$seed" == random ]] && seed=$(( (RANDOM << 30) | (RANDOM << 15) | RANDOM ))
    dir="$jepsen_out/$w-$nodes-$seed"
    info "jepsen: $w on $nodes nodes for ${jepsen_time}s, seed $seed -> $dir"
    if as_root "$CARGO_TARGET_DIR/debug/reef-jepsen" --bin "$CARGO_TARGET_DIR/debug/reef" \
      --workload "$w" --nodes "$nodes" --seed "$seed" --time "$jepsen_time" --out "$dir" \
      >"$dir.stdout" 2>&1; then
      sed -n '1,6p' "$dir/report.txt" >&2
    else
      cat "$dir.stdout" >&2 || true
      failures+=("jepsen $w, $nodes nodes, seed $seed (report $dir/report.txt)")
    fi
  done
fi

not_run=
if ((${#skipped[@]} > 0)); then
  not_run="$(printf '%s; ' "${skipped[@]}")"
  not_run="${not_run%; }"
fi
if ((${#failures[@]} > 0)); then
  printf 'test.sh: FAILED after %ss:\n' "$((SECONDS - started))" >&2
  printf '  - %s\n' "${failures[@]}" >&2
  [[ -z "$not_run" ]] || printf 'NOT RUN: %s\n' "$not_run" >&2
  exit 1
fi
if [[ -n "$not_run" ]]; then
  info "test.sh: everything that ran passed in $((SECONDS - started))s; NOT RUN: $not_run"
else
  info "test.sh: everything passed in $((SECONDS - started))s"
fi
