#!/usr/bin/env bash
# Installs what building, testing and benchmarking reefdb needs, only when it is missing.
#
#   scripts/ensure-deps.sh [build|test|bench|drivers|all]     (default: all)
#
#   build    compilers and tools for the Rust build (RocksDB needs a C++ toolchain and libclang)
#   test     build + psql (postgresql-client), used by the client tests; gdb (stacks of a hung
#            server in a test's failure report); iproute2, nftables and libfaketime (the fault
#            tests' network namespaces, partitions and clock skew)
#   bench    test + PostgreSQL 15 (server and pgbench) and sysbench
#   drivers  what the driver tests (scripts/drivers.sh) run on, and nothing of the Rust build:
#            python3 with venv (python3-venv), node and npm, a JDK (default-jdk-headless; the test
#            runs as a single source file, which needs the jdk.compiler module), pgJDBC
#            (libpostgresql-jdbc-java), openssl (the test server's certificate) and psql
#            (postgresql-client). Found by command, so that e.g. a NodeSource nodejs, which
#            brings its own npm, or another JDK on the PATH is used as it is.
#   all      everything
#
# System packages come from apt-get (with one `apt-get update` first, only when something is
# missing). Rust is installed with rustup only when cargo is absent (not for `drivers`).
# Idempotent, and silent when everything is present.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

group="${1:-all}"
build_pkgs=(build-essential clang libclang-dev protobuf-compiler pkg-config)
test_pkgs=(postgresql-client gdb iproute2 nftables libfaketime faketime)
bench_pkgs=(postgresql-15 sysbench)
want_rust=1
want_drivers=0

case "$group" in
  build) wanted=("${build_pkgs[@]}") ;;
  test) wanted=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  bench) wanted=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  drivers)
    wanted=()
    want_rust=0
    want_drivers=1
    ;;
  all)
    wanted=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}")
    want_drivers=1
    ;;
  -h | --help)
    awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown group '$group' (expected build, test, bench, drivers or all)" ;;
esac

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
if have dpkg-query; then
  for pkg in "${wanted[@]}"; do
    installed "$pkg" || missing+=("$pkg")
  done
elif ((${#wanted[@]} > 0)); then
  # Not a Debian system: check for the commands instead and say what is missing.
  for cmd in cc c++ clang protoc pkg-config; do
    have "$cmd" || missing+=("$cmd")
  done
  if ((${#missing[@]} > 0)); then
    die "missing tools: ${missing[*]}; install them with your package manager"
  fi
fi

# The driver tests' tools, by command: each missing one as the Debian package that provides it.
if ((want_drivers)); then
  have python3 || missing+=(python3)
  # Debian's python3 has no ensurepip, and so cannot make a venv, without python3-venv.
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
  fi
  have node || missing+=(nodejs)
  have npm || missing+=(npm)
  if ! have java || ! java --list-modules 2>/dev/null | grep -q '^jdk\.compiler@'; then
    missing+=(default-jdk-headless)
  fi
  [[ -f /usr/share/java/postgresql.jar ]] || missing+=(libpostgresql-jdbc-java)
  have openssl || missing+=(openssl)
  have psql || missing+=(postgresql-client)
  if ((${#missing[@]} > 0)) && ! have dpkg-query; then
    die "missing for the driver tests: ${missing[*]}; install them with your package manager"
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

((want_rust)) || exit 0

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
