#!/usr/bin/env bash
# Benchmarks reefdb against a local PostgreSQL 15 with pgbench and sysbench and prints
# throughput side by side.
#
#   scripts/bench.sh [--scale N] [--duration SECONDS] [--clients N] [--threads N]
#                    [--sysbench-tables N] [--sysbench-size ROWS] [--only postgres|reef]
#                    [--pg-port PORT] [--reef-port PORT] [--reef-bin PATH] [--no-build] [--keep]
#
# For each target: `pgbench -i -I dtGvp -s SCALE` (drop, create, server-side generate, vacuum,
# primary keys), then select-only (`-S`) and TPC-B-like read/write runs of DURATION seconds with
# CLIENTS clients on THREADS threads (the read/write run retries serialization failures with
# --max-tries 100 where pgbench supports it). Both servers use temporary data directories and are
# stopped at the end. A failing step marks that cell FAIL and the script goes on; step logs are
# kept in the output directory printed at the end. Then sysbench (pgsql driver) prepares
# --sysbench-tables tables of --sysbench-size rows (default 4 x 10000) and runs oltp_point_select
# and oltp_read_write for DURATION seconds with CLIENTS threads. --reef-bin runs a given reef
# binary instead of building the release one (debug figures say nothing about speed).
#
# Defaults: scale 10, 30 s, 8 clients, 2 threads, PostgreSQL on port 5499 and reef on 5433 (or
# free ports when those are taken).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REEF_ROOT"

scale=10 duration=30 clients=8 threads=2 only="" pg_port=5499 reef_port=5433 build=1 keep=0
sb_tables=4 sb_size=10000 reef_bin=""
while (($# > 0)); do
  case "$1" in
    --scale) scale="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --pg-port) pg_port="$2"; shift 2 ;;
    --reef-port) reef_port="$2"; shift 2 ;;
    --sysbench-tables) sb_tables="$2"; shift 2 ;;
    --sysbench-size) sb_size="$2"; shift 2 ;;
    --reef-bin) reef_bin="$2"; build=0; shift 2 ;;
    --no-build) build=0; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case "$only" in "" | postgres | reef) ;; *) die "--only takes postgres or reef" ;; esac

"$REEF_ROOT/scripts/ensure-deps.sh" bench
pgbin="$(pg_bindir)" || die "PostgreSQL 15 server binaries not found (apt-get install postgresql-15)"
pgbench="$pgbin/pgbench"
[[ -x "$pgbench" ]] || pgbench="$(command -v pgbench)" || die "pgbench not found"

max_tries=()
if "$pgbench" --help 2>&1 | grep -q -- '--max-tries'; then
  max_tries=(--max-tries 100)
else
  warn "this pgbench has no --max-tries; the read/write run will not retry serialization failures"
fi

out="$(mktemp -d /tmp/reef-bench.XXXXXX)"
chmod 755 "$out"
PG_DATA="" REEF_PID="" REEF_DATA=""

cleanup() {
  if [[ -n "$PG_DATA" && -d "$PG_DATA" ]]; then
    as_pg_user "$pgbin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  stop_pid "$REEF_PID"
  if ((keep == 0)); then
    [[ -n "$PG_DATA" ]] && rm -rf "$PG_DATA"
    [[ -n "$REEF_DATA" ]] && rm -rf "$REEF_DATA"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A result
for target in postgres reef; do
  for step in init select tpcb tries sb_prepare sb_point sb_rw sb_rw_errors; do
    result[$target.$step]="-"
  done
done

# Runs the pgbench steps against one target: bench_target NAME PORT.
bench_target() {
  local name="$1" port="$2" log tps start
  local conn=(-h 127.0.0.1 -p "$port" -U reef)
  log="$out/$name-init.log"
  info "$name: pgbench -i -I dtGvp -s $scale"
  start="$(date +%s.%N)"
  if "$pgbench" "${conn[@]}" -i -I dtGvp -s "$scale" reef >"$log" 2>&1; then
    result[$name.init]="$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1fs", e - s }')"
  else
    result[$name.init]="FAIL"
    warn "$name: initialization failed; last lines of $log:"
    tail -n 5 "$log" >&2
    result[$name.select]="skipped" result[$name.tpcb]="skipped"
    return 0
  fi
  local step args
  for step in select tpcb; do
    if [[ $step == select ]]; then
      args=(-n -S -c "$clients" -j "$threads" -T "$duration")
    else
      args=(-n -c "$clients" -j "$threads" -T "$duration" "${max_tries[@]}")
    fi
    log="$out/$name-$step.log"
    info "$name: pgbench ${args[*]}"
    if "$pgbench" "${conn[@]}" "${args[@]}" reef >"$log" 2>&1; then
      tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$log" | head -n 1)"
      [[ -n "$tps" ]] && tps="$(printf '%.1f' "$tps")"
      result[$name.$step]="${tps:-FAIL}"
      if [[ $step == tpcb ]]; then
        # Serialization failures that ran out of tries, and transactions that needed retries.
        local failed retried
        failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log" | head -n 1)"
        retried="$(sed -n 's/^number of transactions retried: \([0-9]*\).*/\1/p' "$log" | head -n 1)"
        result[$name.tries]="${failed:-0} / ${retried:-0}"
      fi
    else
      result[$name.$step]="FAIL"
      warn "$name: $step run failed; last lines of $log:"
      tail -n 5 "$log" >&2
    fi
  done
}

# Runs sysbench's OLTP workloads against one target: sysbench_target NAME PORT.
sysbench_target() {
  local name="$1" port="$2" log tps step
  if ! command -v sysbench >/dev/null; then
    result[$name.sb_prepare]="no sysbench"
    return 0
  fi
  local sb=(sysbench --db-driver=pgsql --pgsql-host=127.0.0.1 --pgsql-port="$port"
    --pgsql-user=reef --pgsql-db=reef --tables="$sb_tables" --table-size="$sb_size")
  log="$out/$name-sysbench-prepare.log"
  info "$name: sysbench prepare ($sb_tables tables of $sb_size rows)"
  local start
  start="$(date +%s.%N)"
  if ! "${sb[@]}" --threads="$sb_tables" oltp_read_write prepare >"$log" 2>&1; then
    result[$name.sb_prepare]="FAIL"
    warn "$name: sysbench prepare failed; last lines of $log:"
    tail -n 5 "$log" >&2
    return 0
  fi
  result[$name.sb_prepare]="$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1fs", e - s }')"
  for step in point rw; do
    local workload=oltp_point_select
    [[ $step == rw ]] && workload=oltp_read_write
    log="$out/$name-sysbench-$step.log"
    info "$name: sysbench $workload, $clients threads, ${duration}s"
    if "${sb[@]}" --threads="$clients" --time="$duration" --report-interval=0 "$workload" run >"$log" 2>&1; then
      tps="$(sed -n 's/^ *transactions: *[0-9]* *(\([0-9.]*\) per sec.)/\1/p' "$log" | head -n 1)"
      result[$name.sb_$step]="${tps:-FAIL}"
      if [[ $step == rw ]]; then
        result[$name.sb_rw_errors]="$(sed -n 's/^ *ignored errors: *\([0-9]*\).*/\1/p' "$log" | head -n 1)"
      fi
    else
      result[$name.sb_$step]="FAIL"
      warn "$name: sysbench $workload failed; last lines of $log:"
      tail -n 5 "$log" >&2
    fi
  done
  "${sb[@]}" oltp_read_write cleanup >>"$out/$name-sysbench-prepare.log" 2>&1 || true
}

# PostgreSQL 15.
if [[ "$only" != reef ]]; then
  pg_port="$(free_port "$pg_port")"
  PG_DATA="$(mktemp -d /tmp/reef-bench-pg.XXXXXX)"
  [[ $(id -u) -eq 0 ]] && chown postgres "$PG_DATA"
  info "postgres: initdb and start on 127.0.0.1:$pg_port (data $PG_DATA)"
  if as_pg_user "$pgbin/initdb" -D "$PG_DATA" -A trust -U reef >"$out/postgres-initdb.log" 2>&1 &&
    as_pg_user "$pgbin/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w \
      -o "-p $pg_port -k $PG_DATA -c listen_addresses=127.0.0.1" start >"$out/postgres-start.log" 2>&1 &&
    "$pgbin/createdb" -h 127.0.0.1 -p "$pg_port" -U reef reef >>"$out/postgres-start.log" 2>&1; then
    bench_target postgres "$pg_port"
    sysbench_target postgres "$pg_port"
  else
    warn "postgres: could not start; see $out/postgres-initdb.log, $out/postgres-start.log"
    result[postgres.init]="FAIL" result[postgres.select]="skipped" result[postgres.tpcb]="skipped"
  fi
  as_pg_user "$pgbin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
fi

# reefdb, release build.
if [[ "$only" != postgres ]]; then
  reef_ok=1
  if ((build)); then
    need_cargo
    info "reef: building (release)"
    cargo build --release -p reef-node >"$out/reef-build.log" 2>&1 || {
      warn "reef: release build failed; see $out/reef-build.log"
      reef_ok=0
    }
  fi
  reef_port="$(free_port "$reef_port")"
  REEF_DATA="$(mktemp -d /tmp/reef-bench-data.XXXXXX)"
  [[ -n "$reef_bin" ]] || reef_bin="$CARGO_TARGET_DIR/release/reef"
  if ((reef_ok)) && start_reef "$reef_bin" "$REEF_DATA" "$reef_port" "$out/reef-server.log"; then
    info "reef: started on 127.0.0.1:$reef_port (data $REEF_DATA, binary $reef_bin)"
    bench_target reef "$reef_port"
    sysbench_target reef "$reef_port"
  else
    warn "reef: could not start; see $out/reef-server.log"
    result[reef.init]="FAIL" result[reef.select]="skipped" result[reef.tpcb]="skipped"
  fi
  stop_pid "$REEF_PID"
  REEF_PID=""
fi

ratio() {
  local reef="$1" pg="$2"
  if [[ "$reef" =~ ^[0-9.]+$ && "$pg" =~ ^[0-9.]+$ ]]; then
    awk -v r="$reef" -v p="$pg" 'BEGIN { if (p > 0) printf "%.2f", r / p; else print "-" }'
  else
    printf -- '-'
  fi
}

# Prints a table's column headings.
table_header() {
  printf '%-22s %16s %16s %12s\n' "workload" "PostgreSQL 15" "reefdb" "reef/PG"
  printf '%-22s %16s %16s %12s\n' "----------------------" "----------------" "----------------" "------------"
}

# Prints one row: table_row LABEL KEY [ratio] (the ratio column only for throughputs).
table_row() {
  local r="-"
  [[ "${3:-}" == ratio ]] && r="$(ratio "${result[reef.$2]}" "${result[postgres.$2]}")"
  printf '%-22s %16s %16s %12s\n' "$1" "${result[postgres.$2]}" "${result[reef.$2]}" "$r"
}

printf '\npgbench, scale %s, %s clients, %s threads, %ss per run (logs in %s)\n\n' \
  "$scale" "$clients" "$threads" "$duration" "$out"
table_header
table_row "init -I dtGvp (time)" init
table_row "select-only (TPS)" select ratio
table_row "TPC-B-like (TPS)" tpcb ratio
table_row "TPC-B failed/retried" tries
printf '\nsysbench (pgsql driver), %s tables of %s rows, %s threads, %ss per run\n\n' \
  "$sb_tables" "$sb_size" "$clients" "$duration"
table_header
table_row "prepare (time)" sb_prepare
table_row "oltp_point_select TPS" sb_point ratio
table_row "oltp_read_write TPS" sb_rw ratio
table_row "read_write errors" sb_rw_errors
