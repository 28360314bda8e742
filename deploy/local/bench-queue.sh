#!/usr/bin/env bash
# The waiting room's figures on this machine, in one run (only ratios within a round count:
# everything shares the machine's cores):
#   poll     GET /api/v1/sales/{id}/queue/{ticket} of a waiting ticket (what nearly every
#            poll of a crowd answers) against GET /healthz of the same server,
#            interleaved in BENCH_ROUNDS rounds of BENCH_SECS seconds, 64 requests in flight
#   memory   1,000,000 buyers joined through the join script (lua/queue_join.v1.lua, sent by
#            redis-cli --pipe): Redis bytes per queued buyer, and the keys it took
#   crowd    QUEUE_USERS buyers (100,000) for QUEUE_STOCK units (1,000) through
#            `loadtest --queue`, then the same crowd on an open sale (--compare-open):
#            requests per buyer and per unit sold, the fairness of the order, the pre-queue
#            draw, and how long buyers waited after the sell-out
#   crowd-fit QUEUE_FIT_USERS buyers (50,000) for the same units: the waits after the sell-out
#            of a crowd these cores can poll once a second
# Figures go to standard output, to $TMPDIR/seckill-bench-queue/summary.txt and, as a table
# with the date, the machine and the commit, to docs/BENCHMARKS.md.
#
# Knobs: BENCH_SECS (5), BENCH_ROUNDS (5), BENCH_CONCURRENCY (64), BENCH_PORT (18070; the
# admin listener takes it + 10), QUEUE_USERS (100000), QUEUE_STOCK (1000), QUEUE_MEMORY_USERS
# (1000000), QUEUE_FIT_USERS (50000).
set -euo pipefail
cd "$(dirname "$0")/../.."

SECS="${BENCH_SECS:-5}"
ROUNDS="${BENCH_ROUNDS:-5}"
CONC="${BENCH_CONCURRENCY:-64}"
PORT="${BENCH_PORT:-18070}"
USERS="${QUEUE_USERS:-100000}"
STOCK="${QUEUE_STOCK:-1000}"
MEM_USERS="${QUEUE_MEMORY_USERS:-1000000}"
FIT_USERS="${QUEUE_FIT_USERS:-50000}"
OUT="${TMPDIR:-/tmp}/seckill-bench-queue"
rm -rf "$OUT"; mkdir -p "$OUT"

deploy/local/stack.sh up redis mysql >&2
eval "$(deploy/local/stack.sh env)"
cargo build --profile dist --quiet -p seckill -p loadtest --bins

export SECKILL_KAFKA_BROKERS=embedded
export SECKILL_REDIS_KEY_PREFIX="benchq$(date +%s):"
export SECKILL_LIMITS_GLOBAL_PER_SEC=0 SECKILL_LIMITS_PER_USER_PER_SEC=0
export SECKILL_RECONCILE_INTERVAL_SECS=0
secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
SECKILL_ADMIN_TOKEN=$(secret) SECKILL_JWT_SECRET=$(secret) SECKILL_PAYMENT_SECRET=$(secret)
export SECKILL_ADMIN_TOKEN SECKILL_JWT_SECRET SECKILL_PAYMENT_SECRET
mariadb -h 127.0.0.1 -P "${SECKILL_STACK_MYSQL_PORT:-13306}" -u seckill -pseckill \
  -e 'DROP DATABASE IF EXISTS seckill_bench_queue; CREATE DATABASE seckill_bench_queue'
export SECKILL_MYSQL_URL="${SECKILL_MYSQL_URL%/*}/seckill_bench_queue"
export SECKILL_HTTP_ADDR="127.0.0.1:$PORT" SECKILL_ADMIN_ADDR="127.0.0.1:$((PORT + 10))"
BASE="http://$SECKILL_HTTP_ADDR" ADMIN="http://$SECKILL_ADMIN_ADDR"

target/dist/seckill serve >"$OUT/seckill.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
for _ in $(seq 1 120); do
  curl -sf "$BASE/readyz" >/dev/null && break
  kill -0 $PID 2>/dev/null || { tail -20 "$OUT/seckill.log"; exit 1; }
  sleep 0.5
done
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

echo "== the poll target: a waiting ticket (one buyer admitted ahead of it, who never buys)"
now() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
curl -sf -X POST "$ADMIN/admin/v1/sales" -H "Authorization: Bearer $SECKILL_ADMIN_TOKEN" \
  -H 'content-type: application/json' -o "$OUT/poll-sale.json" -d "{
    \"name\": \"poll target\", \"starts_at\": \"$(now '-1 sec')\", \"ends_at\": \"$(now '+1 hour')\",
    \"items\": [{\"sku\": \"p\", \"title\": \"P\", \"price_cents\": 1, \"stock\": 1000, \"per_user_limit\": 1}],
    \"admission\": {\"mode\": \"queue\", \"admit_per_sec\": 1, \"max_active\": 1, \"admission_ttl_secs\": 600}}"
SALE=$(field "$OUT/poll-sale.json" "d['id']"); ITEM=$(field "$OUT/poll-sale.json" "d['items'][0]['id']")
join_as() { curl -sf -X POST "$BASE/api/v1/sales/$SALE/queue" -H "Authorization: Bearer $(target/dist/seckill token --user "$1")"; }
join_as bench-first >/dev/null
join_as bench-poller >"$OUT/ticket.json"
TICKET=$(field "$OUT/ticket.json" "d['ticket']")
sleep 2
curl -sf "$BASE/api/v1/sales/$SALE/queue/$TICKET" | grep -q '"state":"waiting"' \
  || { echo "bench: the poll target is not waiting" >&2; exit 1; }

LT=(target/dist/loadtest --no-progress --base-url "$BASE" --admin-url "$ADMIN" --concurrency "$CONC" --duration "${SECS}s")
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round of $ROUNDS ($CONC in flight, ${SECS}s each)"
  "${LT[@]}" --endpoint healthz --json "$OUT/healthz-$round.json" | sed -n 3p | sed 's/^/   healthz     /'
  "${LT[@]}" --endpoint queue-poll --sale "$SALE" --item "$ITEM" --ticket "$TICKET" \
    --json "$OUT/poll-$round.json" | sed -n 3p | sed 's/^/   queue poll  /'
done

echo "== memory: $MEM_USERS buyers joined through the join script"
python3 deploy/local/bench_queue_memory.py "$SECKILL_REDIS_URL" "$SECKILL_REDIS_KEY_PREFIX" "$MEM_USERS" \
  lua/queue_join.v1.lua >"$OUT/memory.json"

echo "== crowd: $USERS buyers for $STOCK units through the waiting room, then on an open sale"
target/dist/loadtest --no-progress --base-url "$BASE" --admin-url "$ADMIN" --queue --create-sale \
  --users "$USERS" --stock "$STOCK" --compare-open --connections 256 \
  --json "$OUT/crowd.json" | tee "$OUT/crowd.txt"

# The same crowd's waits after the sell-out hover around 2 s on 2 cores: its 99,000 buyers
# beyond the stock poll once a second, more than the machine answers them with its own client
# on the same cores, so polls queue. A crowd the machine can poll at that rate shows the wait
# the design gives (one poll interval).
echo "== crowd: $FIT_USERS buyers for $STOCK units (a crowd these cores can poll once a second)"
target/dist/loadtest --no-progress --base-url "$BASE" --admin-url "$ADMIN" --queue --create-sale \
  --users "$FIT_USERS" --stock "$STOCK" --connections 256 \
  --json "$OUT/crowd-fit.json" | tee "$OUT/crowd-fit.txt"

python3 deploy/local/bench_queue_summary.py "$OUT" "$ROUNDS" | tee "$OUT/summary.txt"
python3 deploy/local/bench_docs.py queue "$OUT/rows.json"
