#!/usr/bin/env bash
# The three cheap floods of a flash sale, against a real service on this machine, and what got
# through each: cancels of made-up order ids from one buyer, slow request heads on 1,000
# connections, and unauthenticated buys that would drain the instance's bucket while real
# buyers buy (deploy/local/abuse.py; the tests in tests/it/abuse/ assert the same limits).
#
# Starts Redis and MariaDB (deploy/local/stack.sh), builds and runs `seckill all` with
# embedded Kafka, the default limits and an instance bucket of 200 buys a second (so that a
# flood could drain it), runs the floods and stops what it started. Takes about a minute
# after the build. ABUSE_PORT (18180) moves its listeners.
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT="${ABUSE_PORT:-18180}"
LOG_DIR="${TMPDIR:-/tmp}/seckill-abuse"
mkdir -p "$LOG_DIR"
say() { printf '\n== %s\n' "$*"; }

started=()
before=$(deploy/local/stack.sh status 2>/dev/null || true)
for svc in redis mysql; do
  grep -q "^$svc  *up" <<<"$before" || started+=("$svc")
done
stop_started() { for svc in "${started[@]}"; do deploy/local/stack.sh stop "$svc" || true; done; }
trap stop_started EXIT
deploy/local/stack.sh up redis mysql
eval "$(deploy/local/stack.sh env)"

say "building the release binary"
cargo build --release --quiet -p seckill --bin seckill
BIN="${CARGO_TARGET_DIR:-target}/release"   # where cargo put the binaries

export SECKILL_KAFKA_BROKERS=embedded
export SECKILL_HTTP_ADDR="127.0.0.1:$PORT" SECKILL_ADMIN_ADDR="127.0.0.1:$((PORT + 1))"
export SECKILL_MYSQL_URL="${SECKILL_MYSQL_URL%/*}/seckill_abuse"
export SECKILL_REDIS_KEY_PREFIX="abuse:"
export SECKILL_LIMITS_GLOBAL_PER_SEC=200 SECKILL_LIMITS_GLOBAL_BURST=50
secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
SECKILL_ADMIN_TOKEN=$(secret) SECKILL_JWT_SECRET=$(secret) SECKILL_PAYMENT_SECRET=$(secret)
export SECKILL_ADMIN_TOKEN SECKILL_JWT_SECRET SECKILL_PAYMENT_SECRET
MYSQL="mariadb -h 127.0.0.1 -P ${SECKILL_STACK_MYSQL_PORT:-13306} -u seckill -pseckill"
$MYSQL -e 'CREATE DATABASE IF NOT EXISTS seckill_abuse'

say "starting seckill all on $SECKILL_HTTP_ADDR (log: $LOG_DIR/seckill.log)"
"$BIN/seckill" all >"$LOG_DIR/seckill.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; stop_started' EXIT
ready() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT" \
    && printf 'GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 \
    && head -n1 <&3 | grep -q ' 200 ') 2>/dev/null
}
for _ in $(seq 1 120); do ready && break; sleep 0.5; done
ready || { tail -20 "$LOG_DIR/seckill.log"; echo "seckill did not become ready" >&2; exit 1; }

say "floods"
python3 deploy/local/abuse.py --base-url "http://$SECKILL_HTTP_ADDR" \
  --admin-url "http://$SECKILL_ADMIN_ADDR" --admin-token "$SECKILL_ADMIN_TOKEN" \
  --jwt-secret "$SECKILL_JWT_SECRET" --mysql "$MYSQL"
