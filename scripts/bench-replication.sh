#!/usr/bin/env bash
# Benchmarks replicated writes: throughput and latency of write transactions (prewrite + commit,
# two Raft proposals each) with 1 and 3 replicas on this machine, then with 3 replicas over 8
# partitions on 1 and on 2 replication threads per node, then the time from a SIGKILL of the
# leader to the next acknowledged write (3 kills).
#
#   scripts/bench-replication.sh [--clients N] [--duration SECONDS] [--tick-ms MS] [--no-build]
#
# Defaults: 16 clients, 20 s per run, 100 ms ticks (election timeout 10-20 ticks).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REEF_ROOT"

clients=16 duration=20 tick_ms=100 build=1
while (($# > 0)); do
  case "$1" in
    --clients) clients="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --tick-ms) tick_ms="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

"$REEF_ROOT/scripts/ensure-deps.sh" build
target="$CARGO_TARGET_DIR"
if ((build)); then
  cargo build --release --workspace --bins
fi
bench() {
  "$target/release/reef-kvbench" --reef "$target/release/reef" \
    --clients "$clients" --duration "$duration" --tick-ms "$tick_ms" "$@"
}
bench --replicas 1
bench --replicas 3
bench --replicas 3 --partitions 8 --raft-threads 1
bench --replicas 3 --partitions 8 --raft-threads 2 --failover
