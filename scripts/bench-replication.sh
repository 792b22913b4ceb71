#!/usr/bin/env bash
# Benchmarks replicated writes: throughput and latency of write transactions (prewrite + commit,
# two Raft proposals each) with 1 and 3 replicas on this machine, then the time from a SIGKILL
# of the leader to the next acknowledged write (3 kills).
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
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

"$REEF_ROOT/scripts/ensure-deps.sh" build
target="$CARGO_TARGET_DIR"
if ((build)); then
  cargo build --release --workspace --bins
fi
for replicas in 1 3; do
  extra=()
  ((replicas == 3)) && extra=(--failover)
  "$target/release/reef-kvbench" --reef "$target/release/reef" --replicas "$replicas" \
    --clients "$clients" --duration "$duration" --tick-ms "$tick_ms" "${extra[@]}"
done
