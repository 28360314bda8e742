#!/usr/bin/env bash
# Runs every test: checks formatting and lints (rustfmt, clippy with warnings as errors) and
# builds the tests while the local stack installs what is missing, brings the stack up, tests
# the alerting rules with promtool, points the tests at the stack, drops databases left by
# earlier test runs, then runs the whole workspace's tests.
# Extra arguments go to `cargo test` (for example a test name filter); SKIP_LINT=1 skips the
# formatting and lint checks while iterating.
set -euo pipefail
cd "$(dirname "$0")/../.."

[ "${SKIP_LINT:-0}" = 1 ] || cargo fmt --all -- --check

# What the builds need first (a C toolchain, pkg-config, OpenSSL's headers); then everything
# else the tests use installs in the background while clippy and the test build run: on a
# fresh machine the tansu broker's build is the longest part of the run.
deploy/local/stack.sh install build
deploy/local/stack.sh install &   # servers, promtool, chromium, schemathesis, tansu
INSTALL_PID=$!
finish_install() {
  if kill -0 "$INSTALL_PID" 2>/dev/null; then
    echo "test: waiting for deploy/local/stack.sh install to finish" >&2
    wait "$INSTALL_PID" || true
  fi
}
trap finish_install EXIT
[ "${SKIP_LINT:-0}" = 1 ] || cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --no-run --quiet "$@"
wait "$INSTALL_PID" || { echo "test: deploy/local/stack.sh install failed" >&2; exit 1; }
trap - EXIT

deploy/local/stack.sh up
eval "$(deploy/local/stack.sh env)"
deploy/local/stack.sh clean-tests

promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml

cargo test --workspace "$@"
