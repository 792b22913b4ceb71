#!/usr/bin/env bash
# Builds reefdb (release) and starts a single node serving PostgreSQL clients.
#
#   scripts/demo.sh [extra `reef start` arguments, e.g. --pg-addr 127.0.0.1:6543]
#
# Data lives in ./reef-data at the repository root and survives restarts; delete it to start
# empty. Stop the server with Ctrl-C.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REEF_ROOT"

"$REEF_ROOT/scripts/ensure-deps.sh" test
need_cargo

info "building reef (release) into $CARGO_TARGET_DIR; the first build compiles RocksDB and takes a while"
cargo build --release -p reef-node

# Work out the address for the connection hint from the arguments, if given.
addr="127.0.0.1:5433"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --pg-addr) addr="${args[$((i + 1))]:-$addr}" ;;
    --pg-addr=*) addr="${args[$i]#--pg-addr=}" ;;
  esac
done
host="${addr%:*}"
port="${addr##*:}"

cat >&2 <<EOF

reefdb is starting with data in $REEF_ROOT/reef-data.
Connect from another terminal with:

    psql -h $host -p $port -U reef reef

(trust authentication on loopback: no password). Stop the server with Ctrl-C.

EOF
exec "$CARGO_TARGET_DIR/release/reef" start --data-dir "$REEF_ROOT/reef-data" "$@"
