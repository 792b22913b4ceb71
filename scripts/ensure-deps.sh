#!/usr/bin/env bash
# Installs what building, testing and benchmarking reefdb needs, only when it is missing.
#
#   scripts/ensure-deps.sh [build|test|bench|all]     (default: all)
#
#   build  compilers and tools for the Rust build (RocksDB needs a C++ toolchain and libclang)
#   test   build + psql (postgresql-client), used by the client tests; gdb (stacks of a hung
#          server in a test's failure report); iproute2, nftables and libfaketime (the fault
#          tests' network namespaces, partitions and clock skew)
#   bench  test + PostgreSQL 15 (server and pgbench) and sysbench
#   all    everything
#
# System packages come from apt-get (with one `apt-get update` first, only when something is
# missing). Rust is installed with rustup only when cargo is absent. Idempotent, and silent when
# everything is present.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

group="${1:-all}"
build_pkgs=(build-essential clang libclang-dev protobuf-compiler pkg-config)
test_pkgs=(postgresql-client gdb iproute2 nftables libfaketime faketime)
bench_pkgs=(postgresql-15 sysbench)

case "$group" in
  build) wanted=("${build_pkgs[@]}") ;;
  test) wanted=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  bench | all) wanted=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  -h | --help)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown group '$group' (expected build, test, bench or all)" ;;
esac

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
if have dpkg-query; then
  for pkg in "${wanted[@]}"; do
    installed "$pkg" || missing+=("$pkg")
  done
else
  # Not a Debian system: check for the commands instead and say what is missing.
  for cmd in cc c++ clang protoc pkg-config; do
    have "$cmd" || missing+=("$cmd")
  done
  if ((${#missing[@]} > 0)); then
    die "missing tools: ${missing[*]}; install them with your package manager"
  fi
fi

if ((${#missing[@]} > 0)); then
  have apt-get || die "missing packages: ${missing[*]}; apt-get is not available to install them"
  info "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Update the package lists only if they are absent or the install fails on stale lists.
  if [[ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$' -e '^partial$' || true)" ]]; then
    as_root apt-get update -qq >/dev/null
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif ! as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    as_root apt-get update -qq >/dev/null
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# Rust: only when cargo is absent.
if ! have cargo; then
  if have rustup; then
    info "installing the stable Rust toolchain with rustup"
    rustup toolchain install stable --profile minimal >/dev/null &&
      rustup default stable >/dev/null ||
      die "rustup could not install a toolchain (no access to the Rust distribution server?); install Rust 1.85 or newer by hand and re-run"
  elif have curl; then
    info "cargo not found; trying to install Rust with rustup"
    if ! curl --proto '=https' --tlsv1.2 -sSf --max-time 60 https://sh.rustup.rs |
      sh -s -- -y --profile minimal --default-toolchain stable >/dev/null 2>&1; then
      die "could not install Rust with rustup (is the Rust distribution server reachable?); install Rust 1.85 or newer by hand (https://rustup.rs) and re-run"
    fi
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
  else
    die "cargo not found and curl is missing to fetch rustup; install Rust 1.85 or newer (https://rustup.rs)"
  fi
fi

# The workspace needs Rust 1.85 or newer.
version="$(rustc --version 2>/dev/null | awk '{print $2}')"
major="${version%%.*}"
rest="${version#*.}"
minor="${rest%%.*}"
if [[ -n "$version" ]] && ((major == 1 && minor < 85)); then
  die "rustc $version is too old; reefdb needs 1.85 or newer (rustup update stable)"
fi
