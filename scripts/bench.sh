#!/usr/bin/env bash
# Benchmarks reefdb against PostgreSQL 15 on this machine and prints throughput side by side,
# with reef's figure as a ratio of PostgreSQL's from the same run.
#
#   scripts/bench.sh [--targets postgres,reef,cluster] [--scale N] [--duration SECONDS]
#                    [--runs N] [--warmup SECONDS] [--clients N] [--threads N]
#                    [--sysbench-tables N] [--sysbench-size ROWS] [--workloads LIST]
#                    [--failover SECONDS] [--cluster-leaders gateway|spread] [--reef-bin PATH]
#                    [--no-build] [--keep]
#
# Targets: `postgres` (a fresh PostgreSQL 15, default settings, fsync on), `reef` (`reef start`,
# one node) and `cluster` (`reef demo`: three `reef start` processes, three replicas, fsync on).
# The clients connect to the cluster's node 1; with --cluster-leaders gateway (the default) the
# cluster is told to prefer node 1 for leadership (`reef cluster prefer-leaders 1`, as an
# operator does for the nodes applications connect to), with `spread` leadership stays spread
# evenly over the three nodes.
# For each target, in order: bulk load with `pgbench -i -s SCALE` (client-side COPY, timed),
# the orders schema (scripts/bench/orders-schema.sql), `sysbench oltp_read_write prepare`; a
# warm-up run of every workload (WARMUP seconds each); then RUNS rounds of every workload
# (DURATION seconds each, CLIENTS clients on THREADS pgbench threads) and the median of each.
# Workloads (--workloads, comma-separated): select (`pgbench -S -M prepared`), tpcb (`pgbench
# -M prepared`, TPC-B-like), point (`sysbench oltp_point_select`), rw (`sysbench
# oltp_read_write`), orders (scripts/bench/orders.pgbench: an order with 5-15 lines, stock
# taken for each item, the customer read; reported as orders/s). Read/write pgbench runs retry
# serialization failures (--max-tries 100); the table shows how many transactions, over all
# runs, needed a retry and how many ran out of tries. Also printed: each reef node's peak
# resident memory (VmHWM) over the whole run, and, with --failover SECONDS (default 120, 0
# skips), the time from each `kill -9` of a node of a 3-node cluster to the next commit of every
# key in use (reef-jepsen register workload, kill faults only; needs root for its network
# namespace).
#
# A failing step marks its cell FAIL and the script goes on; every log stays in the output folder
# printed at the end. --reef-bin runs a given reef binary instead of building the release one
# (debug figures say nothing about speed). Defaults: scale 100, 30 s runs, 3 runs, 10 s warm-up,
# 8 clients, 2 threads, sysbench 4 tables of 100,000 rows.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REEF_ROOT"

targets="postgres,reef,cluster" scale=100 duration=30 runs=3 warmup=10 clients=8 threads=2
sb_tables=4 sb_size=100000 workloads="select,tpcb,point,rw,orders" failover=120
reef_bin="" build=1 keep=0 cluster_leaders=gateway
while (($# > 0)); do
  case "$1" in
    --targets) targets="$2"; shift 2 ;;
    --scale) scale="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --sysbench-tables) sb_tables="$2"; shift 2 ;;
    --sysbench-size) sb_size="$2"; shift 2 ;;
    --workloads) workloads="$2"; shift 2 ;;
    --failover) failover="$2"; shift 2 ;;
    --cluster-leaders) cluster_leaders="$2"; shift 2 ;;
    --reef-bin) reef_bin="$2"; build=0; shift 2 ;;
    --no-build) build=0; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
IFS=, read -r -a target_list <<<"$targets"
IFS=, read -r -a workload_list <<<"$workloads"
for t in "${target_list[@]}"; do
  case "$t" in postgres | reef | cluster) ;; *) die "unknown target '$t' (postgres, reef, cluster)" ;; esac
done
for w in "${workload_list[@]}"; do
  case "$w" in select | tpcb | point | rw | orders) ;; *) die "unknown workload '$w'" ;; esac
done
case "$cluster_leaders" in gateway | spread) ;; *) die "--cluster-leaders is gateway or spread, not '$cluster_leaders'" ;; esac
for n in "$scale" "$duration" "$runs" "$warmup" "$clients" "$threads" "$sb_tables" "$sb_size" "$failover"; do
  [[ "$n" =~ ^[0-9]+$ ]] || die "'$n' is not a whole number"
done
((runs >= 1)) || die "--runs must be at least 1"

"$REEF_ROOT/scripts/ensure-deps.sh" bench
pgbin="$(pg_bindir)" || die "PostgreSQL 15 server binaries not found (apt-get install postgresql-15)"
pgbench="$pgbin/pgbench"
[[ -x "$pgbench" ]] || pgbench="$(command -v pgbench)" || die "pgbench not found"
"$pgbench" --help 2>&1 | grep -q -- '--max-tries' || die "pgbench 15 or later is needed (--max-tries)"
have sysbench || die "sysbench not found (apt-get install sysbench)"

out="$(mktemp -d /tmp/reef-bench.XXXXXX)"
chmod 755 "$out"
PG_DATA="" REEF_DATA="" SERVER_PID="" NODE_PIDS=()

cleanup() {
  stop_server
  remove_data
}
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A result

# Removes the servers' data directories (unless --keep).
remove_data() {
  if ((keep == 0)); then
    [[ -n "$PG_DATA" ]] && rm -rf "$PG_DATA"
    [[ -n "$REEF_DATA" ]] && rm -rf "$REEF_DATA"
    PG_DATA="" REEF_DATA=""
  fi
  return 0
}

# Stops whichever server runs now.
stop_server() {
  if [[ -n "$PG_DATA" && -d "$PG_DATA" ]]; then
    as_pg_user "$pgbin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  stop_pid "$SERVER_PID"
  SERVER_PID="" NODE_PIDS=()
}

# Starts a target's server; sets PORT, SERVER_PID (reef) and NODE_PIDS (reef's node processes).
start_server() {
  local name="$1"
  PORT="$(free_port 5499)"
  case "$name" in
    postgres)
      PG_DATA="$(mktemp -d /tmp/reef-bench-pg.XXXXXX)"
      [[ $(id -u) -eq 0 ]] && chown postgres "$PG_DATA"
      info "postgres: initdb and start on 127.0.0.1:$PORT (data $PG_DATA)"
      as_pg_user "$pgbin/initdb" -D "$PG_DATA" -A trust -U reef >"$out/postgres-initdb.log" 2>&1 &&
        as_pg_user "$pgbin/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w \
          -o "-p $PORT -k $PG_DATA -c listen_addresses=127.0.0.1" start >"$out/postgres-start.log" 2>&1 &&
        "$pgbin/createdb" -h 127.0.0.1 -p "$PORT" -U reef reef >>"$out/postgres-start.log" 2>&1
      ;;
    reef)
      REEF_DATA="$(mktemp -d /tmp/reef-bench-data.XXXXXX)"
      info "reef: reef start on 127.0.0.1:$PORT (data $REEF_DATA, binary $reef_bin)"
      start_reef "$reef_bin" "$REEF_DATA/node" "$PORT" "$out/reef-server.log" || return 1
      SERVER_PID="$REEF_PID" NODE_PIDS=("$REEF_PID")
      ;;
    cluster)
      REEF_DATA="$(mktemp -d /tmp/reef-bench-data.XXXXXX)"
      # Three consecutive free ports for each of PostgreSQL, gRPC and metrics.
      local grpc metrics i
      PORT="$(free_port 5499 3)" grpc="$(free_port 20260 3)" metrics="$(free_port 20290 3)"
      info "cluster: reef demo, 3 nodes, PostgreSQL on 127.0.0.1:$PORT-$((PORT + 2)) (data $REEF_DATA)"
      "$reef_bin" demo --nodes 3 --data-dir "$REEF_DATA" --pg-port "$PORT" --grpc-port "$grpc" \
        --metrics-port "$metrics" >"$out/cluster-demo.log" 2>&1 </dev/null &
      SERVER_PID=$!
      for i in $(seq 1 1800); do
        grep -q 'press Ctrl-C' "$out/cluster-demo.log" && break
        kill -0 "$SERVER_PID" 2>/dev/null || { warn "reef demo exited; see $out/cluster-demo.log"; return 1; }
        sleep 0.1
      done
      grep -q 'press Ctrl-C' "$out/cluster-demo.log" || { warn "the demo cluster was not ready in 180 s"; return 1; }
      mapfile -t NODE_PIDS < <(pgrep -P "$SERVER_PID")
      if [[ $cluster_leaders == gateway ]]; then
        # The node serving the clients' port (the SQL column of the status table).
        local gateway
        gateway="$("$reef_bin" cluster --host "127.0.0.1:$grpc" status 2>"$out/cluster-leaders.log" |
          awk -v a="127.0.0.1:$PORT" '$3 == a { print $1 }')"
        info "cluster: leaders preferred on node ${gateway:-?}, the one the clients connect to"
        [[ -n $gateway ]] &&
          "$reef_bin" cluster --host "127.0.0.1:$grpc" prefer-leaders "$gateway" >>"$out/cluster-leaders.log" 2>&1 ||
          { warn "could not prefer the gateway for leadership; see $out/cluster-leaders.log"; return 1; }
      fi
      ;;
  esac
}

# Runs a timed step: timed NAME.KEY LOG COMMAND...; records the seconds or FAIL.
timed() {
  local key="$1" log="$2" start
  shift 2
  start="$(date +%s.%N)"
  if "$@" >"$log" 2>&1; then
    result[$key]="$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')"
  else
    result[$key]="FAIL"
    warn "$key failed; last lines of $log:"
    tail -n 5 "$log" >&2
  fi
}

# Prints the throughput a workload run reached (empty if it failed): workload PORT W SECONDS LOG.
workload() {
  local port="$1" w="$2" secs="$3" log="$4"
  local pg=("$pgbench" -h 127.0.0.1 -p "$port" -U reef -n -M prepared -c "$clients" -j "$threads" -T "$secs")
  local sb=(sysbench --db-driver=pgsql --pgsql-host=127.0.0.1 --pgsql-port="$port" --pgsql-user=reef
    --pgsql-db=reef --tables="$sb_tables" --table-size="$sb_size" --threads="$clients"
    --time="$secs" --report-interval=0)
  case "$w" in
    select) "${pg[@]}" -S reef >"$log" 2>&1 || return 0 ;;
    tpcb) "${pg[@]}" --max-tries 100 reef >"$log" 2>&1 || return 0 ;;
    orders) "${pg[@]}" --max-tries 100 -f "$REEF_ROOT/scripts/bench/orders.pgbench" reef >"$log" 2>&1 || return 0 ;;
    point) "${sb[@]}" oltp_point_select run >"$log" 2>&1 || return 0 ;;
    rw) "${sb[@]}" oltp_read_write run >"$log" 2>&1 || return 0 ;;
  esac
  case "$w" in
    point | rw) sed -n 's/^ *transactions: *[0-9]* *(\([0-9.]*\) per sec.)/\1/p' "$log" | head -n 1 ;;
    *) sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$log" | head -n 1 ;;
  esac
}

# Prints the median of numbers (FAIL if any is not a number).
median() {
  local v
  for v in "$@"; do [[ "$v" =~ ^[0-9.]+$ ]] || { echo FAIL; return; }; done
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { printf "%.1f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Benchmarks one target.
bench_target() {
  local name="$1" w r tps
  for w in load orders_load sb_prepare "${workload_list[@]}" rss; do result[$name.$w]="-"; done
  if ! start_server "$name"; then
    warn "$name: could not start; see the logs in $out"
    result[$name.load]="FAIL"
    stop_server
    remove_data
    return 0
  fi
  local conn=(-h 127.0.0.1 -p "$PORT" -U reef)
  info "$name: pgbench -i -s $scale"
  timed "$name.load" "$out/$name-load.log" "$pgbench" "${conn[@]}" -i -s "$scale" reef
  info "$name: orders schema"
  timed "$name.orders_load" "$out/$name-orders-load.log" \
    psql "${conn[@]}" -X -q -v ON_ERROR_STOP=1 -f "$REEF_ROOT/scripts/bench/orders-schema.sql" reef
  info "$name: sysbench prepare ($sb_tables tables of $sb_size rows)"
  timed "$name.sb_prepare" "$out/$name-sysbench-prepare.log" \
    sysbench --db-driver=pgsql --pgsql-host=127.0.0.1 --pgsql-port="$PORT" --pgsql-user=reef \
    --pgsql-db=reef --tables="$sb_tables" --table-size="$sb_size" --threads="$sb_tables" \
    oltp_read_write prepare
  if ((warmup > 0)); then
    for w in "${workload_list[@]}"; do
      info "$name: warm-up $w (${warmup}s)"
      workload "$PORT" "$w" "$warmup" "$out/$name-$w-warmup.log" >/dev/null
    done
  fi
  declare -A runs_of=() retried=() failed=()
  for r in $(seq 1 "$runs"); do
    for w in "${workload_list[@]}"; do
      tps="$(workload "$PORT" "$w" "$duration" "$out/$name-$w-$r.log")"
      [[ -n "$tps" ]] || { tps=FAIL; warn "$name: $w run $r failed; see $out/$name-$w-$r.log"; }
      info "$name: $w run $r: $tps"
      runs_of[$w]+="$tps "
      # Transactions pgbench retried after a serialization failure, and those that ran out of tries.
      if [[ $w == tpcb || $w == orders ]]; then
        retried[$w]=$((${retried[$w]:-0} + $(sed -n 's/^number of transactions retried: \([0-9]*\).*/\1/p' "$out/$name-$w-$r.log" | head -n 1 | grep . || echo 0)))
        failed[$w]=$((${failed[$w]:-0} + $(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out/$name-$w-$r.log" | head -n 1 | grep . || echo 0)))
      fi
    done
  done
  for w in "${workload_list[@]}"; do
    # shellcheck disable=SC2086
    result[$name.$w]="$(median ${runs_of[$w]})"
    result[$name.$w.runs]="${runs_of[$w]% }"
    [[ -n "${retried[$w]:-}" ]] && result[$name.$w.tries]="${retried[$w]} / ${failed[$w]}"
  done
  if [[ $name != postgres ]]; then
    local pid peaks=()
    for pid in "${NODE_PIDS[@]}"; do
      peaks+=("$(awk '/^VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null || echo '?')")
    done
    result[$name.rss]="$(IFS=/; echo "${peaks[*]}") MiB"
  fi
  stop_server
  remove_data
}

if [[ ",$targets," == *,reef,* || ",$targets," == *,cluster,* || $failover -gt 0 ]]; then
  if ((build)); then
    need_cargo
    info "building reef (release) into $CARGO_TARGET_DIR"
    cargo build --release --workspace --bins >"$out/reef-build.log" 2>&1 ||
      die "the release build failed; see $out/reef-build.log"
  fi
  [[ -n "$reef_bin" ]] || reef_bin="$CARGO_TARGET_DIR/release/reef"
  [[ -x "$reef_bin" ]] || die "no reef binary at $reef_bin"
fi

for t in "${target_list[@]}"; do
  bench_target "$t"
done

# Leader failover on a 3-node cluster: kill -9 faults only, a register workload on several keys.
failover_line="not run"
if ((failover > 0)); then
  jepsen="$CARGO_TARGET_DIR/release/reef-jepsen"
  [[ -x "$jepsen" ]] || jepsen="$(dirname "$reef_bin")/reef-jepsen"
  if [[ ! -x "$jepsen" ]]; then
    failover_line="no reef-jepsen binary next to $reef_bin"
  elif [[ $(id -u) != 0 ]]; then
    failover_line="skipped: needs root (network namespace)"
  else
    info "failover: reef-jepsen register, kill -9 only, ${failover}s"
    if "$jepsen" --bin "$reef_bin" --workload register --nemesis kill --time "$failover" \
      --out "$out/failover" >"$out/failover.log" 2>&1; then
      failover_line="$(sed -n 's/^failover after kill -9[^:]*: //p' "$out/failover.log" | head -n 1)"
      [[ -n "$failover_line" ]] || failover_line="no kill hit a key in use; see $out/failover.log"
    else
      failover_line="FAIL (see $out/failover.log)"
    fi
  fi
fi

ratio() {
  local reef="$1" pg="$2"
  if [[ "$reef" =~ ^[0-9.]+$ && "$pg" =~ ^[0-9.]+$ ]]; then
    awk -v r="$reef" -v p="$pg" 'BEGIN { if (p > 0) printf "%.2f", r / p; else print "-" }'
  else
    printf -- '-'
  fi
}

# Prints one row: LABEL KEY [ratio].
row() {
  local line
  line="$(printf '%-26s' "$1")"
  local t
  for t in postgres reef cluster; do
    line+="$(printf ' %12s' "${result[$t.$2]:--}")"
  done
  if [[ "${3:-}" == ratio ]]; then
    line+="$(printf ' %10s %10s' "$(ratio "${result[reef.$2]:-}" "${result[postgres.$2]:-}")" \
      "$(ratio "${result[cluster.$2]:-}" "${result[postgres.$2]:-}")")"
  fi
  printf '%s\n' "$line"
}

printf '\nreefdb vs PostgreSQL 15 on %s (%s cores): pgbench scale %s, %s clients, %s threads,\n' \
  "$(hostname)" "$(nproc)" "$scale" "$clients" "$threads"
printf 'sysbench %s x %s rows; median of %s runs of %ss after a %ss warm-up (logs in %s)\n' \
  "$sb_tables" "$sb_size" "$runs" "$duration" "$warmup" "$out"
if [[ ",$targets," == *,cluster,* ]]; then
  if [[ $cluster_leaders == gateway ]]; then
    printf '3 nodes: clients on node 1, leaders preferred on it (reef cluster prefer-leaders)\n'
  else
    printf '3 nodes: clients on node 1, leaders spread over the nodes\n'
  fi
fi
printf '\n'
printf '%-26s %12s %12s %12s %10s %10s\n' "" "PostgreSQL" "reef 1 node" "reef 3 nodes" "1 node/PG" "3 nodes/PG"
row "pgbench -i (s)" load ratio
row "orders schema load (s)" orders_load
row "sysbench prepare (s)" sb_prepare
for w in "${workload_list[@]}"; do
  case "$w" in
    select) row "pgbench -S (TPS)" select ratio ;;
    tpcb) row "pgbench TPC-B (TPS)" tpcb ratio; row "  retried / failed" tpcb.tries ;;
    point) row "oltp_point_select (TPS)" point ratio ;;
    rw) row "oltp_read_write (TPS)" rw ratio ;;
    orders) row "orders (orders/s)" orders ratio; row "  retried / failed" orders.tries ;;
  esac
done
row "peak RSS per node" rss
printf '\nruns: '
for t in "${target_list[@]}"; do
  for w in "${workload_list[@]}"; do printf '%s %s [%s]; ' "$t" "$w" "${result[$t.$w.runs]:-}"; done
done
printf '\nfailover (3 nodes, kill -9 to next commit of every key in use): %s\n' "$failover_line"
