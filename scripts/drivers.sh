#!/usr/bin/env bash
# Runs the driver tests in tests/drivers (psycopg 3, node-postgres, pgJDBC, tokio-postgres and sqlx,
# each used the way an
# application uses it; tests/drivers/README.md says what they cover) against a fresh reef server
# with TLS, and exits non-zero if any of them failed.
#
#   scripts/drivers.sh [REEF_BINARY]      (default: $CARGO_TARGET_DIR/debug/reef)
#
# First it installs what is missing: system packages with `scripts/ensure-deps.sh drivers`;
# psycopg and SQLAlchemy (pip, into a venv) and node-postgres (npm ci) under the cache directory, outside the
# clone, as are pip's and npm's download caches; each is reinstalled only when its pinned
# versions change. Then it makes a self-signed certificate with openssl, starts reef with it, and
# runs the tests one after another, printing each failed check and each test's summary.
# The tests' full output is kept in the work directory (printed) when one fails.
#
# Environment:
#   CARGO_TARGET_DIR        where the default binary is (default /var/tmp/reef-target)
#   REEF_DRIVERS_CACHE      cache directory (default /var/tmp/reef-drivers)
#   REEF_DRIVERS            which tests to run, from "python node java rust" (default all four)
#   REEF_URL                run against this server instead of starting reef, e.g. PostgreSQL
#                           (postgresql://reef@127.0.0.1:5432/reef) to check the tests themselves;
#                           tests/drivers/README.md says what that server needs
#   REEF_TLS=0              with REEF_URL: the server has no TLS, leave out the TLS checks
#   REEF_DRIVER_TIMEOUT     seconds each test may take (default 300)
#   REEF_DRIVERS_VERBOSE=1  print every check, not only the failed ones
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REEF_ROOT"

started=$SECONDS
drivers_dir="$REEF_ROOT/tests/drivers"
cache="${REEF_DRIVERS_CACHE:-/var/tmp/reef-drivers}"
jdbc_jar=/usr/share/java/postgresql.jar
wanted_tests="${REEF_DRIVERS:-python node java rust}"

wants() { [[ " $wanted_tests " == *" $1 "* ]]; }

# --- Installing what is missing ----------------------------------------------------------------

"$REEF_ROOT/scripts/ensure-deps.sh" drivers
mkdir -p "$cache"
export PIP_CACHE_DIR="$cache/pip-cache"
export npm_config_cache="$cache/npm-cache"

if wants rust; then
  # tokio-postgres and sqlx: a project of its own with its own target directory, so the
  # drivers' dependencies never change how reefdb itself is built.
  info "building the Rust driver test (tokio-postgres, sqlx)"
  CARGO_TARGET_DIR="$cache/rust-target" cargo build --quiet --locked \
    --manifest-path "$drivers_dir/rust/Cargo.toml"
fi

if wants python; then
  venv="$cache/venv"
  requirements="$drivers_dir/python/requirements.txt"
  if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$requirements" "$venv/requirements.installed"; then
    info "installing $(tr '\n' ' ' <"$requirements")into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.installed"
  fi
fi

if wants node; then
  # node_modules lives in the cache too; the test finds it through NODE_PATH.
  node_dir="$cache/node"
  if [[ ! -d "$node_dir/node_modules/pg" ]] || ! cmp -s "$drivers_dir/node/package-lock.json" "$node_dir/package-lock.json"; then
    info "installing node-postgres into $node_dir/node_modules"
    rm -rf "$node_dir"
    mkdir -p "$node_dir"
    cp "$drivers_dir/node/package.json" "$drivers_dir/node/package-lock.json" "$node_dir/"
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  export NODE_PATH="$node_dir/node_modules"
fi

# --- The server --------------------------------------------------------------------------------

work="$(mktemp -d /tmp/reef-drivers.XXXXXX)"
REEF_PID=
trap 'stop_pid "${REEF_PID:-}"' EXIT
if [[ -n "${REEF_URL:-}" ]]; then
  url="$REEF_URL"
  tls="${REEF_TLS:-1}"
  info "drivers: testing against $url (no server started; TLS checks $([[ "$tls" == 0 ]] && echo off || echo on))"
else
  bin="${1:-$CARGO_TARGET_DIR/debug/reef}"
  [[ -x "$bin" ]] || die "no reef binary at $bin: build it (cargo build --bin reef) or pass its path"
  # A self-signed certificate for TLS on the PostgreSQL port; the tests do not verify it.
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$work/key.pem" -out "$work/cert.pem" >"$work/openssl.log" 2>&1 ||
    die "openssl could not make a certificate (see $work/openssl.log)"
  port="$(free_port)"
  info "drivers: starting $bin with TLS on 127.0.0.1:$port (data $work/data, log $work/reef.log)"
  start_reef "$bin" "$work/data" "$port" "$work/reef.log" "" \
    --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" || die "reef did not start (log $work/reef.log)"
  url="postgresql://reef@127.0.0.1:$port/reef"
  tls=1
fi

# --- The tests ---------------------------------------------------------------------------------

failures=()
summaries=()
passes=0
run_test() {
  local name="$1" log="$work/$2.log" status
  shift 2
  info "drivers: $name"
  set +e
  REEF_URL="$url" REEF_TLS="$tls" timeout "${REEF_DRIVER_TIMEOUT:-300}" "$@" 2>&1 | tee "$log" |
    if [[ "${REEF_DRIVERS_VERBOSE:-0}" == 1 ]]; then cat; else grep -v '^ok '; fi
  status=${PIPESTATUS[0]}
  set -e
  summaries+=("$(grep -E '^[A-Za-z]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)")
  if ((status == 0)); then
    passes=$((passes + 1))
  elif ((status == 124)); then
    failures+=("$name: timed out after ${REEF_DRIVER_TIMEOUT:-300}s (output $log)")
  else
    failures+=("$name: exit status $status (output $log)")
  fi
}

wants python && run_test "psycopg 3 (tests/drivers/python/test_psycopg.py)" psycopg \
  "$cache/venv/bin/python" "$drivers_dir/python/test_psycopg.py"
wants python && run_test "SQLAlchemy 2 (tests/drivers/python/test_sqlalchemy.py)" sqlalchemy \
  "$cache/venv/bin/python" "$drivers_dir/python/test_sqlalchemy.py"
wants node && run_test "node-postgres (tests/drivers/node/test_pg.js)" node \
  node "$drivers_dir/node/test_pg.js"
wants rust && run_test "tokio-postgres and sqlx (tests/drivers/rust)" rust \
  "$cache/rust-target/debug/reef-driver-test-rust"
# The JVM runs in UTC: pgJDBC sends its zone as the session's TimeZone (see the test).
wants java && run_test "pgJDBC (tests/drivers/java/DriverTest.java)" pgjdbc \
  java -Duser.timezone=UTC -XX:TieredStopAtLevel=1 -cp "$jdbc_jar" "$drivers_dir/java/DriverTest.java"

if [[ -n "$REEF_PID" ]]; then
  stop_pid "$REEF_PID"
  REEF_PID=
fi
trap - EXIT

summary="$(printf '%s; ' "${summaries[@]}")"
summary="${summary%; }"
if ((${#failures[@]} > 0)); then
  printf 'drivers.sh: FAILED:\n' >&2
  printf '  - %s\n' "${failures[@]}" >&2
  [[ -f "$work/reef.log" ]] && printf 'reef log: %s/reef.log\n' "$work" >&2
  echo "drivers: $passes passed, ${#failures[@]} failed ($summary) in $((SECONDS - started))s"
  exit 1
fi
rm -rf "$work"
echo "drivers: $passes passed, 0 failed ($summary) in $((SECONDS - started))s"
