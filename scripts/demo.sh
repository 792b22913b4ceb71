#!/usr/bin/env bash
# Builds reefdb (release) and starts a local cluster of three `reef` processes with a small
# sample schema (`reef demo`).
#
#   scripts/demo.sh [extra `reef demo` arguments, e.g. --nodes 5 or --pg-port 6543]
#
# The nodes' data and logs live in ./reef-demo at the repository root and survive restarts:
# a second run starts the same cluster on the same data; delete the folder to start empty.
# Stop every node with Ctrl-C.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REEF_ROOT"

"$REEF_ROOT/scripts/ensure-deps.sh" test
need_cargo

info "building reef (release) into $CARGO_TARGET_DIR; the first build compiles RocksDB and takes a while"
cargo build --release -p reef-node

info "starting the demo cluster; it prints how to connect once it is healthy"
exec "$CARGO_TARGET_DIR/release/reef" demo --data-dir "$REEF_ROOT/reef-demo" "$@"
