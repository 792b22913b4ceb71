# Shared helpers for the scripts in this directory. Source it; do not run it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It sets REEF_ROOT (the repository root) and exports CARGO_TARGET_DIR (a persistent build cache
# outside the clone, /var/tmp/reef-target unless already set).

REEF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/reef-target}"
# Make a rustup-installed toolchain visible to non-login shells.
if [[ -d "${CARGO_HOME:-$HOME/.cargo}/bin" && ":$PATH:" != *":${CARGO_HOME:-$HOME/.cargo}/bin:"* ]]; then
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

# Messages go to stderr so they never mix with a script's data output.
info() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

have() { command -v "$1" >/dev/null 2>&1; }

# Runs a command as root: directly when we are root, else through sudo when available.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif have sudo; then
    sudo "$@"
  else
    die "need root to run: $* (run as root or install sudo)"
  fi
}

# The directory holding PostgreSQL 15's server binaries (initdb, pg_ctl, pgbench).
pg_bindir() {
  local dir
  for dir in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [[ -x "$dir/pg_ctl" ]]; then
      printf '%s\n' "$dir"
      return 0
    fi
  done
  return 1
}

# Runs a command as the unprivileged user that owns PostgreSQL data directories: "postgres" when
# we are root (the server refuses to run as root), else ourselves.
as_pg_user() {
  if [[ $(id -u) -eq 0 ]]; then
    local quoted
    quoted="$(printf '%q ' "$@")"
    su postgres -s /bin/bash -c "$quoted"
  else
    "$@"
  fi
}

# Returns success when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints a loopback TCP port that is free now, preferring $1 when given and free; with $2 = N,
# the first of N consecutive free ports. Ports come from below the kernel's ephemeral range, so
# an outgoing connection does not take one before its server binds it.
free_port() {
  local preferred="${1:-}" count="${2:-1}" port i
  runs_free() {
    local p
    for ((p = $1; p < $1 + count; p++)); do port_open "$p" && return 1; done
    return 0
  }
  if [[ -n "$preferred" ]] && runs_free "$preferred"; then
    printf '%s\n' "$preferred"
    return 0
  fi
  for i in $(seq 1 500); do
    port=$((20000 + RANDOM % 12000))
    if runs_free "$port"; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  die "no free TCP port found"
}

# Starts `reef start` in the background: start_reef BIN DATA_DIR PORT LOG [GRPC_PORT [ARG...]].
# The node's gRPC address is 127.0.0.1:GRPC_PORT (empty or absent: a free port); further
# arguments go to `reef start` (e.g. --tls-cert FILE --tls-key FILE).
# Sets REEF_PID, and waits (up to $REEF_START_TIMEOUT seconds, default 120) until the server
# prints its ready line or accepts connections. Returns non-zero if it exits or times out.
start_reef() {
  local bin="$1" data_dir="$2" port="$3" log="$4" grpc="${5:-}" waited=0
  local timeout="${REEF_START_TIMEOUT:-120}"
  shift $(($# < 5 ? $# : 5))
  [[ -n "$grpc" ]] || grpc="$(free_port)"
  "$bin" start --data-dir "$data_dir" --pg-addr "127.0.0.1:$port" \
    --grpc-addr "127.0.0.1:$grpc" "$@" >"$log" 2>&1 </dev/null &
  REEF_PID=$!
  while (( waited < timeout * 10 )); do
    if grep -q 'reefdb ready:' "$log" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$REEF_PID" 2>/dev/null; then
      wait "$REEF_PID" 2>/dev/null
      warn "reef exited before becoming ready (exit status $?); last lines of $log:"
      tail -n 20 "$log" >&2
      REEF_PID=
      return 1
    fi
    if (( waited >= 30 )) && port_open "$port"; then
      return 0
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  warn "reef did not become ready within ${timeout}s; last lines of $log:"
  tail -n 20 "$log" >&2
  stop_pid "$REEF_PID"
  REEF_PID=
  return 1
}

# Stops a process with SIGTERM, waiting up to 30 seconds before SIGKILL.
stop_pid() {
  local pid="$1" i
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  warn "process $pid did not exit within 30s of SIGTERM; killing it"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

# Runs cargo, failing with a clear message when it is missing.
need_cargo() {
  have cargo || die "cargo not found: run scripts/ensure-deps.sh, or install Rust (https://rustup.rs)"
}
