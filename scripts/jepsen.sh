#!/usr/bin/env bash
# Runs the Jepsen-style fault tests: a cluster of real reef processes in a network namespace of
# its own, clients recording a history while a nemesis kills, pauses, partitions, skews clocks,
# splits partitions and moves leaders, then the checkers.
#
#   scripts/jepsen.sh [--workload bank|register|append|all] [--time S] [--seed N] [--out DIR]
#                     [--nodes N] [any other reef-jepsen flag]
#
# Defaults: every workload, 300 s each, a random seed (printed), 3 nodes, output under
# jepsen-out/. Each run writes history.jsonl, faults.jsonl, report.txt, report.json, plot.png and
# the nodes' logs to its folder. Exits non-zero if any run finds an anomaly or the cluster does
# not recover. Needs root (network namespaces, nftables); re-runs itself with sudo otherwise.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REEF_ROOT"

if [[ "$(id -u)" != 0 ]]; then
  have sudo || die "the fault tests need root (network namespaces, nftables) and sudo is missing"
  exec sudo -E "$0" "$@"
fi

workload=all
time=300
out="jepsen-out"
pass=()
while (($# > 0)); do
  case "$1" in
    --workload) workload="$2"; shift 2 ;;
    --time) time="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) pass+=("$1"); shift ;;
  esac
done
case "$workload" in
  all) workloads=(bank register append) ;;
  bank | register | append) workloads=("$workload") ;;
  *) die "unknown workload '$workload' (expected bank, register, append or all)" ;;
esac

"$REEF_ROOT/scripts/ensure-deps.sh" test
need_cargo
info "building (debug) into $CARGO_TARGET_DIR"
cargo build --workspace --bins

failed=()
for w in "${workloads[@]}"; do
  dir="$out/$w"
  [[ ${#workloads[@]} == 1 ]] && dir="$out"
  rm -rf "$dir"
  info "jepsen: $w for ${time}s -> $dir"
  if ! "$CARGO_TARGET_DIR/debug/reef-jepsen" --bin "$CARGO_TARGET_DIR/debug/reef" \
    --workload "$w" --time "$time" --out "$dir" "${pass[@]}"; then
    failed+=("$w (see $dir/report.txt)")
  fi
done
if ((${#failed[@]} > 0)); then
  printf 'jepsen.sh: FAILED:\n' >&2
  printf '  - %s\n' "${failed[@]}" >&2
  exit 1
fi
info "jepsen.sh: no anomaly found"
