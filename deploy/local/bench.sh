#!/usr/bin/env bash
# Benchmarks of the HTTP paths, in one run on this machine, with the ratios the goals use:
#   healthz   GET /healthz of the same binary (the baseline)
#   buy       POST buy while stock remains (every request reserves; Kafka embedded)
#   sold-out  POST buy on a sold-out item (answered from the local flag)
#   sale-page GET /api/v1/sales/{id}, warm caches
#   p99 of buy at 70% of its measured maximum rate (open loop)
# Then the MySQL persistence benchmark (cargo bench --bench persist).
#
# Knobs: BENCH_SECS (10), BENCH_CONCURRENCY (64), BENCH_PORT (18090).
set -euo pipefail
cd "$(dirname "$0")/../.."

SECS="${BENCH_SECS:-10}"
CONC="${BENCH_CONCURRENCY:-64}"
PORT="${BENCH_PORT:-18090}"
OUT="${TMPDIR:-/tmp}/seckill-bench"
mkdir -p "$OUT"

deploy/local/stack.sh up redis mysql >&2
eval "$(deploy/local/stack.sh env)"
cargo build --release --quiet -p seckill -p loadtest --bins

export SECKILL_KAFKA_BROKERS=embedded
export SECKILL_HTTP_ADDR="127.0.0.1:$PORT"
export SECKILL_MYSQL_URL="${SECKILL_MYSQL_URL%/*}/seckill_bench"
export SECKILL_REDIS_KEY_PREFIX="bench$(date +%s):"
export SECKILL_LIMITS_GLOBAL_PER_SEC=0 SECKILL_LIMITS_PER_USER_PER_SEC=0
export SECKILL_ADMIN_TOKEN=bench-admin-token SECKILL_JWT_SECRET=bench-jwt-secret-0123456789
export SECKILL_LOG_FILTER=warn
mariadb -h 127.0.0.1 -P "${SECKILL_STACK_MYSQL_PORT:-13306}" -u seckill -pseckill \
  -e 'CREATE DATABASE IF NOT EXISTS seckill_bench'

target/release/seckill serve >"$OUT/seckill.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
for _ in $(seq 1 120); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3 && head -n1 <&3 | grep -q ' 200 ') 2>/dev/null && break
  sleep 0.5
done

LT=(target/release/loadtest --base-url "http://$SECKILL_HTTP_ADDR" --no-progress --users 100000)
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

echo "== healthz (closed loop, $CONC in flight, ${SECS}s)"
"${LT[@]}" --endpoint healthz --concurrency "$CONC" --duration "${SECS}s" --json "$OUT/healthz.json" | sed 's/^/   /'

echo "== buy while stock remains"
"${LT[@]}" --create-sale --stock 1000000000 --per-user-limit 10000 --concurrency "$CONC" \
  --duration "${SECS}s" --json "$OUT/buy.json" | sed 's/^/   /'
SALE=$(field "$OUT/buy.json" "d['sale_id']")
ITEM=$(field "$OUT/buy.json" "d['item_id']")

echo "== sold-out path"
"${LT[@]}" --create-sale --stock 1 --concurrency "$CONC" --duration "${SECS}s" \
  --json "$OUT/soldout.json" | sed 's/^/   /'

echo "== sale page (warm caches)"
"${LT[@]}" --endpoint sale-page --sale "$SALE" --item "$ITEM" --concurrency "$CONC" \
  --duration "${SECS}s" --json "$OUT/salepage.json" | sed 's/^/   /'

BUY_MAX=$(field "$OUT/buy.json" "int(d['throughput_per_sec'])")
RATE=$(( BUY_MAX * 7 / 10 ))
echo "== buy at 70% of its maximum ($RATE req/s, open loop)"
"${LT[@]}" --sale "$SALE" --item "$ITEM" --rate "$RATE" --connections "$CONC" \
  --duration "${SECS}s" --json "$OUT/buy70.json" | sed 's/^/   /'

python3 - "$OUT" <<'PY'
import json, sys, os
d = lambda n: json.load(open(os.path.join(sys.argv[1], n + ".json")))
h, b, s, p, b70 = d("healthz"), d("buy"), d("soldout"), d("salepage"), d("buy70")
t = lambda x: x["throughput_per_sec"]
print("\n== summary (same binary, same machine, same run)")
print(f"   healthz    {t(h):>9.0f} req/s   p99 {h['latency']['p99_ms']:.2f} ms")
print(f"   buy        {t(b):>9.0f} req/s   p99 {b['latency']['p99_ms']:.2f} ms   ratio to healthz {t(b)/t(h):.2f}  (goal >= 0.6)")
print(f"   sold-out   {t(s):>9.0f} req/s   p99 {s['latency']['p99_ms']:.2f} ms   ratio to healthz {t(s)/t(h):.2f}  (goal >= 0.9)")
print(f"   sale page  {t(p):>9.0f} req/s   p99 {p['latency']['p99_ms']:.2f} ms   ratio to healthz {t(p)/t(h):.2f}  (goal >= 0.9)")
print(f"   buy @70%   {t(b70):>9.0f} req/s   p99 {b70['latency']['p99_ms']:.2f} ms (open loop, goal p99 <= 5 ms)")
PY

kill -TERM $PID; wait $PID 2>/dev/null || true
trap - EXIT

echo
echo "== MySQL persistence (cargo bench --bench persist)"
cargo bench --quiet --bench persist 2>/dev/null
