#!/usr/bin/env bash
# Runs the driver tests in tests/drivers (psycopg 3, node-postgres and pgJDBC, each used the way an
# application uses it) against a fresh reef server, and exits non-zero if any of them failed.
#
#   scripts/drivers.sh [REEF_BINARY]      (default: $CARGO_TARGET_DIR/debug/reef)
#
# It installs what is missing first: with apt-get, python3-venv, nodejs and npm, a JDK
# (default-jdk-headless) and pgJDBC (libpostgresql-jdbc-java); with pip, psycopg and SQLAlchemy
# into a venv under the cache directory; with npm, node-postgres into
# tests/drivers/node/node_modules.
#
# Environment:
#   CARGO_TARGET_DIR    where the default binary is (default /var/tmp/reef-target)
#   REEF_DRIVERS_CACHE  cache directory for the Python venv (default /var/tmp/reef-drivers)
#   REEF_DRIVERS        which tests to run, from "python node java" (default all three)
#   REEF_URL            run against this server instead of starting reef, e.g. a PostgreSQL
#                       (postgresql://reef@127.0.0.1:5432/reef) to check the tests themselves
#   REEF_DRIVER_TIMEOUT seconds each test may take (default 600)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REEF_ROOT"

drivers_dir="$REEF_ROOT/tests/drivers"
cache="${REEF_DRIVERS_CACHE:-/var/tmp/reef-drivers}"
jdbc_jar=/usr/share/java/postgresql.jar
wanted_tests="${REEF_DRIVERS:-python node java}"

wants() { [[ " $wanted_tests " == *" $1 "* ]]; }

# --- Installing what is missing ----------------------------------------------------------------

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Installs Debian packages, refreshing the package lists first only if they are absent or stale.
apt_install() {
  have apt-get || die "missing: $*; install them (apt-get is not available here)"
  info "installing system packages: $*"
  export DEBIAN_FRONTEND=noninteractive
  if [[ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$' -e '^partial$' || true)" ]] ||
    ! as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
    as_root apt-get update -qq >/dev/null
    as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}

missing=()
if wants python; then
  have python3 || missing+=(python3)
  # Debian's python3 has no ensurepip, and so cannot make a venv, without python3-venv.
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
  fi
fi
if wants node; then
  have node || missing+=(nodejs)
  have npm || missing+=(npm)
fi
if wants java; then
  # The test runs as a single source file, which needs a JDK's compiler, not only a JRE.
  have javac || missing+=(default-jdk-headless)
  [[ -f "$jdbc_jar" ]] || missing+=(libpostgresql-jdbc-java)
fi
if ((${#missing[@]} > 0)); then
  apt_install "${missing[@]}"
fi

if wants python; then
  venv="$cache/venv"
  requirements="$drivers_dir/python/requirements.txt"
  # Reinstall only when the requirements changed since the last install.
  if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$requirements" "$venv/requirements.installed"; then
    info "installing $(tr '\n' ' ' <"$requirements")into $venv"
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.installed"
  fi
fi

if wants node; then
  node_dir="$drivers_dir/node"
  if [[ ! -d "$node_dir/node_modules/pg" ]] || ! cmp -s "$node_dir/package-lock.json" "$node_dir/node_modules/.package-lock.json.installed"; then
    info "installing node-postgres into $node_dir/node_modules"
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$node_dir/package-lock.json" "$node_dir/node_modules/.package-lock.json.installed"
  fi
fi

# --- A fresh reef server -----------------------------------------------------------------------

REEF_PID=
work=
if [[ -n "${REEF_URL:-}" ]]; then
  url="$REEF_URL"
  info "drivers: testing against $url (no server started)"
else
  bin="${1:-$CARGO_TARGET_DIR/debug/reef}"
  [[ -x "$bin" ]] || die "no reef binary at $bin: build it (cargo build --bin reef) or pass its path"
  work="$(mktemp -d /tmp/reef-drivers.XXXXXX)"
  port="$(free_port)"
  info "drivers: starting $bin on 127.0.0.1:$port (data $work/data, log $work/reef.log)"
  trap 'stop_pid "${REEF_PID:-}"' EXIT
  start_reef "$bin" "$work/data" "$port" "$work/reef.log" || die "reef did not start (log $work/reef.log)"
  url="postgresql://reef@127.0.0.1:$port/reef"
fi

# --- The tests ---------------------------------------------------------------------------------

failures=()
passes=0
run_test() {
  local name="$1"
  shift
  info "drivers: $name"
  if REEF_URL="$url" timeout "${REEF_DRIVER_TIMEOUT:-600}" "$@"; then
    passes=$((passes + 1))
  else
    failures+=("$name (exit status $?)")
  fi
}

wants python && run_test "psycopg 3 (tests/drivers/python/test_psycopg.py)" \
  "$cache/venv/bin/python" "$drivers_dir/python/test_psycopg.py"
wants python && run_test "SQLAlchemy 2 (tests/drivers/python/test_sqlalchemy.py)" \
  "$cache/venv/bin/python" "$drivers_dir/python/test_sqlalchemy.py"
wants node && run_test "node-postgres (tests/drivers/node/test_pg.js)" \
  node "$drivers_dir/node/test_pg.js"
wants java && run_test "pgJDBC (tests/drivers/java/DriverTest.java)" \
  java -cp "$jdbc_jar" "$drivers_dir/java/DriverTest.java"

if [[ -n "$REEF_PID" ]]; then
  stop_pid "$REEF_PID"
  REEF_PID=
  trap - EXIT
fi

if ((${#failures[@]} > 0)); then
  printf 'drivers.sh: FAILED:\n' >&2
  printf '  - %s\n' "${failures[@]}" >&2
  [[ -n "$work" ]] && printf 'reef log: %s/reef.log\n' "$work" >&2
  echo "drivers: $passes passed, ${#failures[@]} failed"
  exit 1
fi
[[ -n "$work" ]] && rm -rf "$work"
echo "drivers: $passes passed, 0 failed"
