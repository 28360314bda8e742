#!/usr/bin/env bash
# Runs every test: checks formatting and lints (rustfmt, clippy with warnings as errors), brings
# up the local stack (installing what is missing), tests the alerting rules with promtool,
# points the tests at the stack, drops databases left by earlier test runs, then runs the whole
# workspace's tests.
# Extra arguments go to `cargo test` (for example a test name filter); SKIP_LINT=1 skips the
# formatting and lint checks while iterating.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "${SKIP_LINT:-0}" != 1 ]; then
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets --quiet -- -D warnings
fi

deploy/local/stack.sh install   # everything the tests use (servers, promtool, chromium, schemathesis)
deploy/local/stack.sh up
eval "$(deploy/local/stack.sh env)"
deploy/local/stack.sh clean-tests

promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml

cargo test --workspace "$@"
