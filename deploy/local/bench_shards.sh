#!/usr/bin/env bash
# A hot item beyond one Redis core: the same buy load on an item of one shard and on an item of
# three, on the stack's Redis Cluster (three masters, each with a replica), through one
# `seckill serve` (default confirmation mode). Around each buy run, each master's main-thread
# CPU and EVALSHA calls are sampled. Printed, per item (median run): each master's Redis CPU
# per buy of the item (its CPU over the item's buys), their sum, and the modelled ceiling of
# the item: one second over the busiest master's CPU per buy, the buys per second at which
# that master's core would be full. Everything shares this machine's cores, so the masters'
# CPU per buy is the figure; the throughput is not.
#
# bench.sh runs it after its rounds (its rows join docs/BENCHMARKS.md); it also runs alone.
# Knobs: BENCH_SECS (5), BENCH_SHARD_ROUNDS (3), BENCH_CONCURRENCY (64), BENCH_SHARD_PORT
# (18120; the admin listener takes it + 10), OUT (a folder for the runs; rows-shards.json).
set -euo pipefail
cd "$(dirname "$0")/../.."

SECS="${BENCH_SECS:-5}"
ROUNDS="${BENCH_SHARD_ROUNDS:-3}"
CONC="${BENCH_CONCURRENCY:-64}"
PORT="${BENCH_SHARD_PORT:-18120}"
OUT="${OUT:-${TMPDIR:-/tmp}/seckill-bench-shards}"
mkdir -p "$OUT"

deploy/local/stack.sh up redis mysql >&2
deploy/local/stack.sh start cluster >&2
eval "$(deploy/local/stack.sh env)"
cargo build --profile dist --quiet -p seckill -p loadtest --bins

CLUSTER_PORT="${SECKILL_STACK_CLUSTER_PORT:-17000}"
MASTERS=()
for p in $(seq "$CLUSTER_PORT" $((CLUSTER_PORT + 5))); do
  [ "$(redis-cli -h 127.0.0.1 -p "$p" role | head -n1)" = master ] && MASTERS+=("$p")
done
[ "${#MASTERS[@]}" = 3 ] || { echo "bench_shards: expected three masters, found ${MASTERS[*]}" >&2; exit 1; }

secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
export SECKILL_KAFKA_BROKERS=embedded SECKILL_RECONCILE_INTERVAL_SECS=0
export SECKILL_LIMITS_GLOBAL_PER_SEC=0 SECKILL_LIMITS_PER_USER_PER_SEC=0
export SECKILL_REDIS_KEY_PREFIX="benchs$(date +%s):"
export SECKILL_REDIS_URL="redis+cluster://$(printf '127.0.0.1:%s,' "${MASTERS[@]}" | sed 's/,$//')"
SECKILL_ADMIN_TOKEN=$(secret) SECKILL_JWT_SECRET=$(secret) SECKILL_PAYMENT_SECRET=$(secret)
export SECKILL_ADMIN_TOKEN SECKILL_JWT_SECRET SECKILL_PAYMENT_SECRET
mariadb -h 127.0.0.1 -P "${SECKILL_STACK_MYSQL_PORT:-13306}" -u seckill -pseckill \
  -e 'DROP DATABASE IF EXISTS seckill_bench_shards; CREATE DATABASE seckill_bench_shards'
export SECKILL_MYSQL_URL="${SECKILL_MYSQL_URL%/*}/seckill_bench_shards"
target/dist/seckill migrate >/dev/null
export SECKILL_MYSQL_MIGRATE_ON_START=false

SECKILL_HTTP_ADDR="127.0.0.1:$PORT" SECKILL_ADMIN_ADDR="127.0.0.1:$((PORT + 10))" \
  target/dist/seckill serve >"$OUT/seckill-shards.log" 2>&1 &
SERVE=$!
trap 'kill -TERM $SERVE 2>/dev/null; wait $SERVE 2>/dev/null' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.5
done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "bench_shards: seckill did not become ready" >&2; exit 1; }

LT=(target/dist/loadtest --no-progress --users 100000 --base-url "http://127.0.0.1:$PORT"
    --admin-url "http://127.0.0.1:$((PORT + 10))")
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }
for shards in 1 3; do
  "${LT[@]}" --create-sale --stock 1000000000 --per-user-limit 10000 --shards "$shards" \
    --concurrency 4 --requests 10 --json "$OUT/setup-shards$shards.json" >/dev/null
done

# Each master's main-thread CPU (s) and EVALSHA calls, as one JSON object by port.
sample() {
  local first=1
  printf '{'
  for p in "${MASTERS[@]}"; do
    [ $first = 1 ] || printf ','
    first=0
    redis-cli -h 127.0.0.1 -p "$p" info everything | tr -d '\r' | awk -F'[:=,]' -v port="$p" '
      /^used_cpu_(sys|user)_main_thread:/ {cpu += $2}
      /^cmdstat_evalsha:/ {calls = $3}
      END {printf "\"%s\": {\"cpu_s\": %.6f, \"evalsha_calls\": %d}", port, cpu, calls}'
  done
  printf '}\n'
}
echo "== a hot item on Redis Cluster (three masters, ${#MASTERS[@]} sampled; $CONC in flight, ${SECS}s, $ROUNDS rounds)"
for round in $(seq 1 "$ROUNDS"); do
  for shards in 1 3; do
    sale=$(field "$OUT/setup-shards$shards.json" sale_id); item=$(field "$OUT/setup-shards$shards.json" item_id)
    sample >"$OUT/shards$shards-$round.before.json"
    "${LT[@]}" --sale "$sale" --item "$item" --concurrency "$CONC" --duration "${SECS}s" \
      --json "$OUT/shards$shards-$round.json" | sed -n 3p | sed "s/^/   $(printf '%-16s' "$shards shard(s)")/"
    sample >"$OUT/shards$shards-$round.after.json"
  done
done

python3 - "$OUT" "$ROUNDS" <<'PY'
import json, os, statistics, sys

out, rounds = sys.argv[1], int(sys.argv[2])
rows_file = os.path.join(out, "rows.json")
rows = json.load(open(rows_file)) if os.path.exists(rows_file) else []
print("   Redis CPU per buy of the item, by master (its main thread over the item's buys; the"
      " median run by the busiest master):")
for shards in (1, 3):
    runs = []
    for r in range(1, rounds + 1):
        load = lambda s: json.load(open(os.path.join(out, f"shards{shards}-{r}{s}.json")))
        run, before, after = load(""), load(".before"), load(".after")
        sold = run["outcomes"]["reserved"]
        if sold == 0:
            continue
        per = {p: (after[p]["cpu_s"] - before[p]["cpu_s"]) * 1e6 / sold for p in before}
        calls = {p: after[p]["evalsha_calls"] - before[p]["evalsha_calls"] for p in before}
        runs.append((max(per.values()), per, calls, sold))
    if not runs:
        continue
    runs.sort(key=lambda x: x[0])
    busiest, per, calls, sold = runs[len(runs) // 2]
    total_calls = sum(calls.values()) or 1
    masters = ", ".join(f"{p}: {us:.1f} µs ({100 * calls[p] / total_calls:.0f}% of EVALSHA)"
                        for p, us in sorted(per.items()))
    ceiling = 1e6 / busiest
    label = f"{shards} shard" + ("s" if shards > 1 else "")
    print(f"   {label:<9} {masters}; sum {sum(per.values()):.1f} µs")
    print(f"   ceiling of one item, {label}: {ceiling:.0f} buys/s (1 s / {busiest:.1f} µs on the busiest master)")
    rows.append({"figure": f"Redis CPU per buy by master, item of {label} (Cluster, 3 masters)",
                 "measured": masters, "ratio": "", "goal": ""})
    rows.append({"figure": f"modelled ceiling of one item, {label}",
                 "measured": f"{ceiling:.0f} buys/s, one core per master", "ratio": "", "goal": ""})
json.dump(rows, open(rows_file, "w"), indent=1)
PY
