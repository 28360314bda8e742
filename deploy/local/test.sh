#!/usr/bin/env bash
# Runs every test: brings up the local stack (installing what is missing), points the tests at
# it, drops databases left by earlier test runs, then runs the whole workspace's tests.
# Extra arguments go to `cargo test` (for example a test name filter).
set -euo pipefail
cd "$(dirname "$0")/../.."

deploy/local/stack.sh up
eval "$(deploy/local/stack.sh env)"
deploy/local/stack.sh clean-tests

cargo test --workspace "$@"
