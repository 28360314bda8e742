#!/usr/bin/env bash
# Quickstart: the whole product on one machine, in one command.
#
#   1. A build of `seckill` and `loadtest` (profile `quick`), in the background, while
#   2. Redis and MariaDB from Debian's packages start on their own loopback ports (installed if
#      missing and run as root); Kafka is librdkafka's in-process mock cluster (`embedded`).
#   3. `seckill all` (API + outbox relay + order consumer + reconciler in one process).
#   4. The loadtest creates a sale (payment window 20 s), hammers it, waits for the consumer to
#      drain, and checks the promises; then, as the payment provider, pays 60% of the orders
#      and lets the rest expire, and prints the orders' states and the reconciliation report.
#   5. Everything this script started is stopped; the exit code is 0 only if the report is clean.
#      With --keep, the service stays up afterwards: the script prints the console's address,
#      the admin token and how to stop it.
#
# Knobs (environment): QUICKSTART_PORT (18080), QUICKSTART_DURATION (5s), QUICKSTART_STOCK
# (10000), QUICKSTART_USERS (50000), QUICKSTART_CONCURRENCY (64),
# QUICKSTART_PAYMENT_WINDOW_SECS (20), QUICKSTART_PAY_SHARE (0.6).
set -euo pipefail
cd "$(dirname "$0")/../.."

KEEP=0
for arg in "$@"; do
  case "$arg" in
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "quickstart: unknown argument $arg (only --keep)" >&2; exit 2 ;;
  esac
done

PORT="${QUICKSTART_PORT:-18080}"
DURATION="${QUICKSTART_DURATION:-5s}"
STOCK="${QUICKSTART_STOCK:-10000}"
USERS="${QUICKSTART_USERS:-50000}"
CONCURRENCY="${QUICKSTART_CONCURRENCY:-64}"
# The payment window outlasts the load and the drain, so the payments land inside it.
WINDOW="${QUICKSTART_PAYMENT_WINDOW_SECS:-20}"
PAY_SHARE="${QUICKSTART_PAY_SHARE:-0.6}"
LOG_DIR="${TMPDIR:-/tmp}/seckill-quickstart"
mkdir -p "$LOG_DIR"

# Each step with the time since the start, so a first run shows where its minutes go.
say() { printf '\n== [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# The build is most of a first run's time, so it starts first and Redis and MariaDB
# are installed (when missing) and started while it runs.
say "building the binaries (log: $LOG_DIR/build.log), meanwhile starting Redis and MariaDB"
deploy/local/stack.sh install build   # the C toolchain, pkg-config and OpenSSL's headers
# The `quick` profile (Cargo.toml): a first build in about three quarters of the release build's time.
cargo build --profile quick --quiet -p seckill -p loadtest --bins >"$LOG_DIR/build.log" 2>&1 &
BUILD_PID=$!
# Servers already running (say, for the tests) are left running at the end; those started
# here are stopped again.
started=()
before=$(deploy/local/stack.sh status 2>/dev/null || true)
for svc in redis mysql; do
  grep -q "^$svc  *up" <<<"$before" || started+=("$svc")
done
stop_started() {
  kill "$BUILD_PID" 2>/dev/null || true
  for svc in "${started[@]}"; do deploy/local/stack.sh stop "$svc" || true; done
}
trap stop_started EXIT
deploy/local/stack.sh up redis mysql
eval "$(deploy/local/stack.sh env)"
say "waiting for the build"
wait "$BUILD_PID" || { tail -30 "$LOG_DIR/build.log"; echo "quickstart: the build failed" >&2; exit 1; }
BIN="${CARGO_TARGET_DIR:-target}/quick"   # where cargo put the binaries

export SECKILL_KAFKA_BROKERS=embedded
export SECKILL_HTTP_ADDR="127.0.0.1:$PORT" SECKILL_ADMIN_ADDR="127.0.0.1:$((PORT + 1))"
export SECKILL_MYSQL_URL="${SECKILL_MYSQL_URL%/*}/seckill_quickstart"
# Its own database and its own Redis keys: a sale of this database never meets the Redis state
# of the default database's sale with the same id.
export SECKILL_REDIS_KEY_PREFIX="quickstart:"
# Secrets of this run only: 32 random bytes each, as hex (the service refuses short or
# placeholder ones).
secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
SECKILL_ADMIN_TOKEN=$(secret) SECKILL_JWT_SECRET=$(secret) SECKILL_PAYMENT_SECRET=$(secret)
export SECKILL_ADMIN_TOKEN SECKILL_JWT_SECRET SECKILL_PAYMENT_SECRET
# The loadtest plays many users from one address; keep the per-user buckets generous.
export SECKILL_LIMITS_PER_USER_PER_SEC=50 SECKILL_LIMITS_PER_USER_BURST=50
export SECKILL_RECONCILE_LEDGER_GRACE_SECS=5
mariadb -h 127.0.0.1 -P "${SECKILL_STACK_MYSQL_PORT:-13306}" -u seckill -pseckill \
  -e 'CREATE DATABASE IF NOT EXISTS seckill_quickstart'

say "starting seckill all on $SECKILL_HTTP_ADDR (log: $LOG_DIR/seckill.log)"
"$BIN/seckill" all >"$LOG_DIR/seckill.log" 2>&1 &
SECKILL_PID=$!
cleanup() {
  if kill -0 "$SECKILL_PID" 2>/dev/null; then
    kill -TERM "$SECKILL_PID" 2>/dev/null || true
    wait "$SECKILL_PID" 2>/dev/null || true
  fi
}
trap 'cleanup; stop_started' EXIT

# GET /readyz with bash alone (no curl needed on a fresh machine).
ready() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT" \
    && printf 'GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 \
    && head -n1 <&3 | grep -q ' 200 ') 2>/dev/null
}
for _ in $(seq 1 120); do
  if ready; then break; fi
  kill -0 "$SECKILL_PID" 2>/dev/null || { tail -20 "$LOG_DIR/seckill.log"; echo "seckill exited" >&2; exit 1; }
  sleep 0.5
done
ready || { tail -20 "$LOG_DIR/seckill.log"; echo "seckill did not become ready" >&2; exit 1; }

say "loadtest: a sale of $STOCK units, $USERS users, $CONCURRENCY in flight for $DURATION"
set +e
"$BIN/loadtest" --base-url "http://$SECKILL_HTTP_ADDR" \
  --admin-url "http://$SECKILL_ADMIN_ADDR" --create-sale \
  --stock "$STOCK" --per-user-limit 1 --users "$USERS" --concurrency "$CONCURRENCY" \
  --duration "$DURATION" --verify --payment-window-secs "$WINDOW" --pay-share "$PAY_SHARE" \
  --json "$LOG_DIR/loadtest.json" --report "$LOG_DIR/report.html"
status=$?
set -e

if [ $KEEP = 1 ]; then
  trap - EXIT
  say "seckill keeps running (pid $SECKILL_PID, log $LOG_DIR/seckill.log)"
  cat <<KEPT
  console       http://$SECKILL_ADMIN_ADDR/console
  admin token   $SECKILL_ADMIN_TOKEN
  buyers' API   http://$SECKILL_HTTP_ADDR
  a buyer token SECKILL_JWT_SECRET=$SECKILL_JWT_SECRET $BIN/seckill token --user alice
  stop it with  kill $SECKILL_PID$(for svc in "${started[@]}"; do printf '; deploy/local/stack.sh stop %s' "$svc"; done)
KEPT
  [ $status -eq 0 ] && say "quickstart OK: the reconciliation report is clean" || say "quickstart FAILED (exit $status)"
  exit $status
fi
say "stopping seckill (SIGTERM: finish requests, flush Kafka, commit the consumer)"
cleanup
trap - EXIT
if [ ${#started[@]} -gt 0 ]; then
  say "stopping what this script started: ${started[*]} (data kept in the stack's state folder)"
  stop_started
fi
if [ $status -eq 0 ]; then
  say "quickstart OK: the reconciliation report is clean (figures in $LOG_DIR/loadtest.json, charts in $LOG_DIR/report.html)"
else
  say "quickstart FAILED (exit $status); see $LOG_DIR/seckill.log"
fi
exit $status
