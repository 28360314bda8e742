#!/usr/bin/env bash
# Benchmarks of the HTTP paths, in one run on this machine, with the ratios the goals use:
#   healthz   GET /healthz of the same binary (the baseline)
#   buy       POST buy while stock remains (every request reserves; Kafka embedded), once per
#             confirmation mode, each against its own `seckill serve` (same binary, same Redis
#             master and replica, same database): `ledger`, `replica` (the default), `kafka`
#   sold-out  POST buy on a sold-out item (answered from the local flag)
#   sale-page GET /api/v1/sales/{id}, warm caches
#   p99 of buy at 70% of its measured maximum rate (open loop)
# Then the MySQL persistence benchmark (cargo bench --bench persist).
#
# Each HTTP scenario runs BENCH_ROUNDS times, interleaved; ratios are taken within a round and
# the summary shows their median and range.
# Knobs: BENCH_SECS (5), BENCH_ROUNDS (5), BENCH_CONCURRENCY (64), BENCH_PORT (18090).
set -euo pipefail
cd "$(dirname "$0")/../.."

SECS="${BENCH_SECS:-5}"
ROUNDS="${BENCH_ROUNDS:-5}"
CONC="${BENCH_CONCURRENCY:-64}"
PORT="${BENCH_PORT:-18090}"
OUT="${TMPDIR:-/tmp}/seckill-bench"
mkdir -p "$OUT"

deploy/local/stack.sh up redis mysql >&2   # Redis with its replica: `replica` mode waits for it
eval "$(deploy/local/stack.sh env)"
cargo build --release --quiet -p seckill -p loadtest --bins

export SECKILL_KAFKA_BROKERS=embedded
export SECKILL_HTTP_ADDR="127.0.0.1:$PORT"
export SECKILL_MYSQL_URL="${SECKILL_MYSQL_URL%/*}/seckill_bench"
export SECKILL_REDIS_KEY_PREFIX="bench$(date +%s):"
export SECKILL_LIMITS_GLOBAL_PER_SEC=0 SECKILL_LIMITS_PER_USER_PER_SEC=0
export SECKILL_ADMIN_TOKEN=bench-admin-token SECKILL_JWT_SECRET=bench-jwt-secret-0123456789
mariadb -h 127.0.0.1 -P "${SECKILL_STACK_MYSQL_PORT:-13306}" -u seckill -pseckill \
  -e 'DROP DATABASE IF EXISTS seckill_bench; CREATE DATABASE seckill_bench'

# One server per confirmation mode; the default (replica) one also serves healthz, sold-out and
# the sale page.
MODES=(ledger replica kafka)
target/release/seckill migrate >/dev/null
export SECKILL_MYSQL_MIGRATE_ON_START=false   # migrated once above; three servers would race
PIDS=()
for i in 0 1 2; do
  SECKILL_HTTP_ADDR="127.0.0.1:$((PORT + i))" SECKILL_BUY_CONFIRM="${MODES[$i]}" \
    target/release/seckill serve >"$OUT/seckill-${MODES[$i]}.log" 2>&1 &
  PIDS+=($!)
done
trap 'kill -TERM "${PIDS[@]}" 2>/dev/null; wait "${PIDS[@]}" 2>/dev/null' EXIT
for i in 0 1 2; do
  for _ in $(seq 1 120); do
    (exec 3<>"/dev/tcp/127.0.0.1/$((PORT + i))" && printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3 && head -n1 <&3 | grep -q ' 200 ') 2>/dev/null && break
    sleep 0.5
  done
done
url_of() { echo "http://127.0.0.1:$((PORT + $1))"; }

LT0=(target/release/loadtest --no-progress --users 100000)
LT=("${LT0[@]}" --base-url "$(url_of 1)")
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

# The sales the runs target: one with stock to spare (every buy reserves), one sold out.
"${LT[@]}" --create-sale --stock 1000000000 --per-user-limit 10000 --concurrency 4 \
  --requests 10 --json "$OUT/setup-buy.json" >/dev/null
"${LT[@]}" --create-sale --stock 1 --concurrency 4 --requests 10 --json "$OUT/setup-soldout.json" >/dev/null
BUY_SALE=$(field "$OUT/setup-buy.json" "d['sale_id']"); BUY_ITEM=$(field "$OUT/setup-buy.json" "d['item_id']")
SO_SALE=$(field "$OUT/setup-soldout.json" "d['sale_id']"); SO_ITEM=$(field "$OUT/setup-soldout.json" "d['item_id']")

# Rounds interleave the scenarios, so a noisy neighbour hits all of them alike; the summary
# takes each scenario's median round.
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round of $ROUNDS ($CONC in flight, ${SECS}s each)"
  "${LT[@]}" --endpoint healthz --concurrency "$CONC" --duration "${SECS}s" --json "$OUT/healthz-$round.json" | sed -n 3p | sed 's/^/   healthz   /'
  for i in 0 1 2; do
    m=${MODES[$i]}
    "${LT0[@]}" --base-url "$(url_of $i)" --sale "$BUY_SALE" --item "$BUY_ITEM" --concurrency "$CONC" --duration "${SECS}s" --json "$OUT/buy-$m-$round.json" | sed -n 3p | sed "s/^/   buy $(printf '%-8s' "$m") /"
  done
  "${LT[@]}" --sale "$SO_SALE" --item "$SO_ITEM" --concurrency "$CONC" --duration "${SECS}s" --json "$OUT/soldout-$round.json" | sed -n 3p | sed 's/^/   sold-out  /'
  "${LT[@]}" --endpoint sale-page --sale "$BUY_SALE" --item "$BUY_ITEM" --concurrency "$CONC" --duration "${SECS}s" --json "$OUT/salepage-$round.json" | sed -n 3p | sed 's/^/   sale page /'
done

BUY_MAX=$(python3 - "$OUT" "$ROUNDS" <<'PY'
import json, os, statistics, sys
print(int(statistics.median(json.load(open(os.path.join(sys.argv[1], f"buy-replica-{r}.json")))["throughput_per_sec"] for r in range(1, int(sys.argv[2]) + 1))))
PY
)
RATE=$(( BUY_MAX * 7 / 10 ))
echo "== buy (replica mode, the default) at 70% of its median maximum ($RATE req/s, open loop, ${SECS}s)"
"${LT[@]}" --sale "$BUY_SALE" --item "$BUY_ITEM" --rate "$RATE" --connections "$CONC" \
  --duration "${SECS}s" --json "$OUT/buy70.json" | sed -n 3,4p | sed 's/^/   /'

python3 - "$OUT" "$ROUNDS" <<'PY'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
load = lambda name, r: json.load(open(os.path.join(out, f"{name}-{r}.json")))
t = lambda x: x["throughput_per_sec"]
rs = range(1, rounds + 1)
print(f"\n== summary over {rounds} interleaved rounds (same binary, same machine, same run)")
print("   ratios are taken within each round (the machine's speed drifts between rounds);")
print("   shown: median ratio [lowest, highest], and the median throughput and p99")
h = [load("healthz", r) for r in rs]
print(f"   healthz    {statistics.median(t(x) for x in h):>9.0f} req/s   p99 {statistics.median(x['latency']['p99_ms'] for x in h):.2f} ms")
for name, label, goal in [("buy-replica", "buy", 0.6), ("soldout", "sold-out", 0.9), ("salepage", "sale page", 0.9)]:
    runs = [load(name, r) for r in rs]
    ratios = sorted(t(runs[i]) / t(h[i]) for i in range(rounds))
    print(f"   {label:<10} {statistics.median(t(x) for x in runs):>9.0f} req/s   p99 {statistics.median(x['latency']['p99_ms'] for x in runs):.2f} ms"
          f"   ratio to healthz {statistics.median(ratios):.2f} [{ratios[0]:.2f}, {ratios[-1]:.2f}]  (goal >= {goal})")
print("   buy per confirmation mode, ratio to ledger mode within each round (goal: the default >= 0.8):")
led = [load("buy-ledger", r) for r in rs]
for m in ["ledger", "replica", "kafka"]:
    runs = [load(f"buy-{m}", r) for r in rs]
    ratios = sorted(t(runs[i]) / t(led[i]) for i in range(rounds))
    print(f"     {m:<8} {statistics.median(t(x) for x in runs):>9.0f} req/s   p99 {statistics.median(x['latency']['p99_ms'] for x in runs):.2f} ms"
          f"   ratio to ledger {statistics.median(ratios):.2f} [{ratios[0]:.2f}, {ratios[-1]:.2f}]")
b70 = json.load(open(os.path.join(out, "buy70.json")))
print(f"   buy @70%   {t(b70):>9.0f} req/s   p99 {b70['latency']['p99_ms']:.2f} ms (open loop, goal p99 <= 5 ms)")
PY

kill -TERM "${PIDS[@]}"; wait "${PIDS[@]}" 2>/dev/null || true
trap - EXIT
# Every reservation above stays in Redis until its sale's end plus grace: drop this run's keys
# so repeated benchmarks do not fill the local Redis.
redis-cli -h 127.0.0.1 -p "${SECKILL_STACK_REDIS_PORT:-16379}" --scan --pattern "${SECKILL_REDIS_KEY_PREFIX}*" \
  | xargs -r -n 500 redis-cli -h 127.0.0.1 -p "${SECKILL_STACK_REDIS_PORT:-16379}" unlink >/dev/null

echo
echo "== MySQL persistence (cargo bench --bench persist)"
cargo bench --quiet --bench persist 2>/dev/null
