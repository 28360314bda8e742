#!/usr/bin/env bash
# Benchmarks of the HTTP paths, in one run on this machine, beside the reference peer
# (../shared/bench/peer-naive: JWT, then one EVALSHA per buy, a local sold-out flag, nothing
# else). Only ratios taken within one round count: everything shares the machine's cores.
#
# Servers (same Redis master and replica, same database; Kafka embedded):
#   seckill serve, once per confirmation mode: ledger, replica (the default), kafka
#   seckill serve with a global bucket of 1 request/s (its answers are 429)
#   the peer                       (skipped with a notice when its folder is not there)
#   a baseline seckill at git revision BENCH_BASELINE, when given (before/after in one run;
#   built in the same profile, so a revision with the `dist` profile and the admin listener)
# Scenarios, interleaved in BENCH_ROUNDS rounds of BENCH_SECS seconds, 64 requests in flight:
#   healthz       GET /healthz of seckill and of the peer
#   buy           POST buy while stock remains, per mode, the peer's, the baseline's
#   sold-out      POST buy on a sold-out item, seckill and the peer
#   rate-limited  POST buy answered 429 by the global bucket
#   sale page     GET /api/v1/sales/{id}, warm caches
#   then: buy (default mode) at 70% of its median maximum, open loop, for the p99
#   around every buy run: the Redis master's main-thread CPU and EVALSHA time, per unit sold
#   then a hot item of one shard and of three on the stack's Redis Cluster (bench_shards.sh):
#   each master's CPU per buy, and the modelled ceiling of the item
# Then the MySQL persistence and expiry benchmarks (cargo bench).
#
# The results table goes to docs/BENCHMARKS.md (deploy/local/bench_docs.py), with the date,
# the machine and the commit.
#
# Knobs: BENCH_SECS (5), BENCH_ROUNDS (5), BENCH_CONCURRENCY (64), BENCH_PORT (18090, the
# servers take it and the next five, their admin listeners those ten above), BENCH_BASELINE (a git revision), PEER_DIR
# (../shared/bench/peer-naive).
set -euo pipefail
cd "$(dirname "$0")/../.."

SECS="${BENCH_SECS:-5}"
ROUNDS="${BENCH_ROUNDS:-5}"
CONC="${BENCH_CONCURRENCY:-64}"
PORT="${BENCH_PORT:-18090}"
PEER_DIR="${PEER_DIR:-../shared/bench/peer-naive}"
OUT="${TMPDIR:-/tmp}/seckill-bench"
rm -rf "$OUT"; mkdir -p "$OUT"
# Everything printed is also kept, for docs/BENCHMARKS.md at the end.
exec 3>&1 > >(tee "$OUT/output.txt")
TEE=$!

deploy/local/stack.sh up >&2   # Redis with its replica (`replica` mode waits for it); the broker for the RSS step
eval "$(deploy/local/stack.sh env)"
# The baseline first, in the same profile and target folder as the current build (its
# dependencies are built once for both, and the two binaries differ only in their code); it
# is copied aside before the current build takes target/dist/seckill back.
HAVE_BASE=0
if [ -n "${BENCH_BASELINE:-}" ]; then
  rm -rf target/baseline-src && mkdir -p target/baseline-src target/baseline/release
  git archive "$BENCH_BASELINE" | tar -x -C target/baseline-src
  cargo build --profile dist --quiet --manifest-path target/baseline-src/Cargo.toml \
    --target-dir target -p seckill --bin seckill
  cp target/dist/seckill target/baseline/release/seckill
  HAVE_BASE=1
fi
cargo build --profile dist --quiet -p seckill -p loadtest --bins

HAVE_PEER=0
if [ -f "$PEER_DIR/Cargo.toml" ]; then
  cargo build --release --quiet --manifest-path "$PEER_DIR/Cargo.toml" --target-dir target/peer --locked
  HAVE_PEER=1
else
  echo "bench: no reference peer at $PEER_DIR (set PEER_DIR); its columns are skipped" >&2
fi

export SECKILL_KAFKA_BROKERS=embedded
export SECKILL_REDIS_KEY_PREFIX="bench$(date +%s):"
export SECKILL_LIMITS_GLOBAL_PER_SEC=0 SECKILL_LIMITS_PER_USER_PER_SEC=0
# The periodic reconciliation off in the rounds: one server wins its lock and then passes over
# the sales every 30 s, so whether a round overlapped a pass (and which server led) would sway
# the figures. One full pass is measured on its own in the memory step.
export SECKILL_RECONCILE_INTERVAL_SECS=0
secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
SECKILL_ADMIN_TOKEN=$(secret) SECKILL_JWT_SECRET=$(secret) SECKILL_PAYMENT_SECRET=$(secret)
export SECKILL_ADMIN_TOKEN SECKILL_JWT_SECRET SECKILL_PAYMENT_SECRET
MYSQL_BASE="${SECKILL_MYSQL_URL%/*}"
mysql_admin() { mariadb -h 127.0.0.1 -P "${SECKILL_STACK_MYSQL_PORT:-13306}" -u seckill -pseckill -e "$1"; }
mysql_admin 'DROP DATABASE IF EXISTS seckill_bench; CREATE DATABASE seckill_bench'
export SECKILL_MYSQL_URL="$MYSQL_BASE/seckill_bench"
target/dist/seckill migrate >/dev/null
export SECKILL_MYSQL_MIGRATE_ON_START=false   # migrated once above; several servers would race

PIDS=()
trap 'kill -TERM "${PIDS[@]}" 2>/dev/null; wait "${PIDS[@]}" 2>/dev/null' EXIT
url_of() { echo "http://127.0.0.1:$((PORT + $1))"; }
admin_of() { url_of $(($1 + 10)); }  # a server's admin listener: PORT + SLOT + 10
serve() { # serve SLOT NAME [VAR=VALUE...] -- start `seckill serve` on PORT + SLOT
  local slot=$1 name=$2; shift 2
  env SECKILL_HTTP_ADDR="127.0.0.1:$((PORT + slot))" SECKILL_ADMIN_ADDR="127.0.0.1:$((PORT + slot + 10))" "$@" \
    target/dist/seckill serve >"$OUT/seckill-$name.log" 2>&1 &
  PIDS+=($!)
}
MODES=(ledger replica kafka)
for i in 0 1 2; do serve "$i" "${MODES[$i]}" SECKILL_BUY_CONFIRM="${MODES[$i]}"; done
serve 3 limited SECKILL_LIMITS_GLOBAL_PER_SEC=1 SECKILL_LIMITS_GLOBAL_BURST=1
if [ $HAVE_PEER = 1 ]; then
  PEER_ADDR="127.0.0.1:$((PORT + 4))" PEER_REDIS="$SECKILL_REDIS_URL" \
    PEER_JWT_SECRET="$SECKILL_JWT_SECRET" PEER_LIMIT=10000 \
    target/peer/release/peer-naive >"$OUT/peer.log" 2>&1 &
  PIDS+=($!)
fi
if [ $HAVE_BASE = 1 ]; then
  mysql_admin 'DROP DATABASE IF EXISTS seckill_bench_base; CREATE DATABASE seckill_bench_base'
  SECKILL_HTTP_ADDR="127.0.0.1:$((PORT + 5))" SECKILL_ADMIN_ADDR="127.0.0.1:$((PORT + 15))" \
    SECKILL_MYSQL_URL="$MYSQL_BASE/seckill_bench_base" \
    SECKILL_MYSQL_MIGRATE_ON_START=true SECKILL_REDIS_KEY_PREFIX="${SECKILL_REDIS_KEY_PREFIX}base:" \
    target/baseline/release/seckill serve >"$OUT/seckill-baseline.log" 2>&1 &
  PIDS+=($!)
fi
wait_http() { # wait_http SLOT PATH
  for _ in $(seq 1 120); do
    (exec 3<>"/dev/tcp/127.0.0.1/$((PORT + $1))" && printf 'GET %s HTTP/1.0\r\n\r\n' "$2" >&3 && head -n1 <&3 | grep -q ' 200 ') 2>/dev/null && return
    sleep 0.5
  done
  echo "bench: the server on $((PORT + $1)) did not become ready" >&2; exit 1
}
for i in 0 1 2 3; do wait_http "$i" /readyz; done
[ $HAVE_PEER = 0 ] || wait_http 4 /healthz
[ $HAVE_BASE = 0 ] || wait_http 5 /readyz

LT0=(target/dist/loadtest --no-progress --users 100000)
LT=("${LT0[@]}" --base-url "$(url_of 1)" --admin-url "$(admin_of 1)")
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

# The sales the runs target: one with stock to spare (every buy reserves), one sold out.
"${LT[@]}" --create-sale --stock 1000000000 --per-user-limit 10000 --concurrency 4 \
  --requests 10 --json "$OUT/setup-buy.json" >/dev/null
"${LT[@]}" --create-sale --stock 1 --concurrency 4 --requests 10 --json "$OUT/setup-soldout.json" >/dev/null
BUY_SALE=$(field "$OUT/setup-buy.json" "d['sale_id']"); BUY_ITEM=$(field "$OUT/setup-buy.json" "d['item_id']")
SO_SALE=$(field "$OUT/setup-soldout.json" "d['sale_id']"); SO_ITEM=$(field "$OUT/setup-soldout.json" "d['item_id']")
if [ $HAVE_PEER = 1 ]; then
  # The peer's own keys: a huge stock for buys, none for the sold-out item.
  redis-cli -h 127.0.0.1 -p "${SECKILL_STACK_REDIS_PORT:-16379}" set "peer:{s$BUY_SALE:i$BUY_ITEM}:stock" 1000000000 >/dev/null
  redis-cli -h 127.0.0.1 -p "${SECKILL_STACK_REDIS_PORT:-16379}" set "peer:{s$SO_SALE:i$SO_ITEM}:stock" 0 >/dev/null
fi
if [ $HAVE_BASE = 1 ]; then
  "${LT0[@]}" --base-url "$(url_of 5)" --admin-url "$(admin_of 5)" --create-sale --stock 1000000000 --per-user-limit 10000 \
    --concurrency 4 --requests 10 --json "$OUT/setup-base.json" >/dev/null
  BASE_SALE=$(field "$OUT/setup-base.json" "d['sale_id']"); BASE_ITEM=$(field "$OUT/setup-base.json" "d['item_id']")
fi

# The Redis master's main-thread CPU (user + sys, seconds) and its EVALSHA calls and time, as
# JSON: sampled around each buy run, for the Redis CPU one buy costs (bench_summary.py).
redis_sample() {
  redis-cli -h 127.0.0.1 -p "${SECKILL_STACK_REDIS_PORT:-16379}" info everything | tr -d '\r' | awk -F'[:=,]' '
    /^used_cpu_(sys|user)_main_thread:/ {cpu += $2}
    /^cmdstat_evalsha:/ {calls = $3; usec = $5}
    END {printf "{\"cpu_s\": %.6f, \"evalsha_calls\": %d, \"evalsha_usec\": %d}\n", cpu, calls, usec}'
}
scenario() { # scenario NAME LABEL LOADTEST-ARGS...
  local name=$1 label=$2; shift 2
  case "$name" in *buy*) redis_sample >"$OUT/$name-$round.redis-before.json" ;; esac
  "${LT0[@]}" --concurrency "$CONC" --duration "${SECS}s" --json "$OUT/$name-$round.json" "$@" \
    | sed -n 3p | sed "s/^/   $(printf '%-16s' "$label")/"
  case "$name" in *buy*) redis_sample >"$OUT/$name-$round.redis-after.json" ;; esac
}
# Rounds interleave the scenarios, so a noisy neighbour hits all of them alike; the summary
# takes each scenario's median round.
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round of $ROUNDS ($CONC in flight, ${SECS}s each)"
  scenario healthz healthz --base-url "$(url_of 1)" --endpoint healthz
  [ $HAVE_PEER = 0 ] || scenario peer-healthz "peer healthz" --base-url "$(url_of 4)" --endpoint healthz
  # The baseline's buys sit next to this build's default mode, first in even rounds and second
  # in odd ones: a buy run leaves the replica catching up with its writes, which the next
  # `replica`-mode run waits for, so neither side always follows the other.
  base_buy() { [ $HAVE_BASE = 0 ] || scenario base-buy "baseline buy" --base-url "$(url_of 5)" --sale "$BASE_SALE" --item "$BASE_ITEM"; }
  for i in 0 1 2; do
    [ "$i" != 1 ] || [ $((round % 2)) = 1 ] || base_buy
    scenario "buy-${MODES[$i]}" "buy ${MODES[$i]}" --base-url "$(url_of $i)" --sale "$BUY_SALE" --item "$BUY_ITEM"
    [ "$i" != 1 ] || [ $((round % 2)) = 0 ] || base_buy
  done
  [ $HAVE_PEER = 0 ] || scenario peer-buy "peer buy" --base-url "$(url_of 4)" --sale "$BUY_SALE" --item "$BUY_ITEM"
  scenario soldout sold-out --base-url "$(url_of 1)" --sale "$SO_SALE" --item "$SO_ITEM"
  [ $HAVE_PEER = 0 ] || scenario peer-soldout "peer sold-out" --base-url "$(url_of 4)" --sale "$SO_SALE" --item "$SO_ITEM"
  scenario limited rate-limited --base-url "$(url_of 3)" --sale "$BUY_SALE" --item "$BUY_ITEM"
  scenario salepage "sale page" --base-url "$(url_of 1)" --endpoint sale-page --sale "$BUY_SALE" --item "$BUY_ITEM"
done

BUY_MAX=$(python3 - "$OUT" "$ROUNDS" <<'PY'
import json, os, statistics, sys
print(int(statistics.median(json.load(open(os.path.join(sys.argv[1], f"buy-replica-{r}.json")))["throughput_per_sec"] for r in range(1, int(sys.argv[2]) + 1))))
PY
)
RATE=$(( BUY_MAX * 7 / 10 ))
echo "== buy (replica mode, the default) at 70% of its median maximum ($RATE req/s, open loop, ${SECS}s)"
# The p99 goal is the loadtest's own threshold: it judges it (exit 1 when broken, kept in
# buy70.json's "thresholds"); the summary prints the verdict. A miss does not stop the bench.
B70=0
"${LT[@]}" --sale "$BUY_SALE" --item "$BUY_ITEM" --rate "$RATE" --connections "$CONC" \
  --duration "${SECS}s" --threshold 'p99<=5ms' --json "$OUT/buy70.json" >"$OUT/buy70.txt" || B70=$?
[ "$B70" -le 1 ] || { cat "$OUT/buy70.txt"; echo "bench: the open-loop run failed (exit $B70)" >&2; exit "$B70"; }
sed -n 3,4p "$OUT/buy70.txt" | sed 's/^/   /'

python3 deploy/local/bench_summary.py "$OUT" "$ROUNDS"
# A hot item on the stack's Redis Cluster, of one shard and of three (bench_shards.sh): each
# master's CPU per buy and the modelled ceilings; its rows join rows.json.
OUT="$OUT" BENCH_SHARD_PORT=$((PORT + 30)) deploy/local/bench_shards.sh

# Memory. Redis: what 100,000 reservations leave until the sale's end + grace (every key of the
# item: the ledger and buyers, bucketed from script v5 on; before v5 also the idempotency hash),
# by MEMORY USAGE of the item's keys and by the used_memory delta; each buyer sends an
# Idempotency-Key. The sale runs the default script version. Process: peak RSS (VmHWM) of each
# server after everything above.
rcli() { redis-cli -h 127.0.0.1 -p "${SECKILL_STACK_REDIS_PORT:-16379}" "$@"; }
used() { rcli info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }
MEM_UNITS=100000
"${LT[@]}" --create-sale --stock "$MEM_UNITS" --per-user-limit 1 --concurrency 4 --requests 1 \
  --json "$OUT/setup-mem.json" >/dev/null
MEM_SALE=$(field "$OUT/setup-mem.json" "d['sale_id']"); MEM_ITEM=$(field "$OUT/setup-mem.json" "d['item_id']")
BEFORE=$(used)
target/dist/loadtest --no-progress --base-url "$(url_of 1)" --sale "$MEM_SALE" --item "$MEM_ITEM" --users 400000 \
  --idempotency-keys --concurrency "$CONC" --requests $((MEM_UNITS + 40000)) --json "$OUT/mem.json" >/dev/null
sleep 2   # the relay drains the outbox
AFTER=$(used)
# The item's hash tag carries its sale's uid from script v6 on: {s<sale>.<uid>:i<item>}.
META_KEY=$(rcli --scan --pattern "${SECKILL_REDIS_KEY_PREFIX}sk:{s$MEM_SALE.*:i$MEM_ITEM}:meta" | head -n 1)
BASE_KEY="${META_KEY%:meta}"
[ -n "$BASE_KEY" ] || BASE_KEY="${SECKILL_REDIS_KEY_PREFIX}sk:{s$MEM_SALE:i$MEM_ITEM}"
KEYS_BYTES=0; ITEM_KEYS=0
for k in $(rcli --scan --pattern "$BASE_KEY:*"); do
  b=$(rcli memory usage "$k" samples 0); KEYS_BYTES=$((KEYS_BYTES + ${b:-0})); ITEM_KEYS=$((ITEM_KEYS + 1))
done
RESERVED=$(rcli hget "$BASE_KEY:meta" entries)   # v5 counts its bucketed entries in meta
[ -n "$RESERVED" ] || RESERVED=$(rcli hlen "$BASE_KEY:ledger")
echo "== memory"
echo "   redis         $RESERVED reservations: $((KEYS_BYTES / (RESERVED > 0 ? RESERVED : 1))) B each by MEMORY USAGE of the item's keys, $(((AFTER - BEFORE) / (RESERVED > 0 ? RESERVED : 1))) B each by used_memory delta (goal <= 128 B)"
echo "                 over $ITEM_KEYS keys of the item; the sale runs script $(rcli hget "$BASE_KEY:meta" script_version)"
for i in 0 1 2; do
  pid=${PIDS[$i]}
  echo "   seckill serve ${MODES[$i]}: peak RSS $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$pid/status) (embedded Kafka)"
done
[ $HAVE_PEER = 0 ] || echo "   peer: peak RSS $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/${PIDS[4]}/status)"

kill -TERM "${PIDS[@]}"; wait "${PIDS[@]}" 2>/dev/null || true
PIDS=()

# Process memory with the real broker, for `seckill serve` (default mode, beside a
# `seckill consume`) and for `seckill all` (the API, relay and consumer in one process): the
# periodic reconciliation off, so the buys are measured alone, 256 connections of buys for
# 30 s; then one reconciliation of what they reserved, in the same process (admin API).
RSS_SECS="${BENCH_RSS_SECS:-30}"
rss() { awk -v k="$2" '$1 == k":" {printf "%.1f MiB", $2/1024}' "/proc/$1/status"; }
rss_step() ( # rss_step serve|all SLOT GOAL_TEXT
  local what=$1 slot=$2 goal=$3 spid cpid=
  export SECKILL_KAFKA_BROKERS="127.0.0.1:${SECKILL_STACK_KAFKA_PORT:-19092}"
  export SECKILL_KAFKA_TOPIC="bench-orders-$what-$(date +%s)" SECKILL_KAFKA_GROUP_ID="bench-$what-$(date +%s)"
  export SECKILL_RECONCILE_INTERVAL_SECS=0 SECKILL_REDIS_KEY_PREFIX="${SECKILL_REDIS_KEY_PREFIX}rss-$what:"
  echo "   seckill $what, real broker (tansu), 256 connections for ${RSS_SECS}s of buys:"
  SECKILL_HTTP_ADDR="$(url_of "$slot" | sed 's|http://||')" SECKILL_ADMIN_ADDR="$(admin_of "$slot" | sed 's|http://||')" \
    target/dist/seckill "$what" >"$OUT/seckill-rss-$what.log" 2>&1 &
  spid=$!
  if [ "$what" = serve ]; then
    SECKILL_HTTP_ADDR="$(url_of $((slot + 1)) | sed 's|http://||')" SECKILL_ADMIN_ADDR="$(admin_of $((slot + 1)) | sed 's|http://||')" \
      target/dist/seckill consume >"$OUT/consume-rss.log" 2>&1 &
    cpid=$!
  fi
  trap 'kill -TERM $spid $cpid 2>/dev/null; wait $spid $cpid 2>/dev/null' EXIT
  wait_http "$slot" /readyz
  echo "      at start: RSS $(rss $spid VmRSS)"
  LTR=(target/dist/loadtest --no-progress --users 100000 --base-url "$(url_of "$slot")" --admin-url "$(admin_of "$slot")")
  "${LTR[@]}" --create-sale --stock 1000000000 --per-user-limit 10000 --concurrency 4 --requests 10 \
    --json "$OUT/setup-rss-$what.json" >/dev/null
  rss_sale=$(field "$OUT/setup-rss-$what.json" "d['sale_id']")
  "${LTR[@]}" --sale "$rss_sale" --item "$(field "$OUT/setup-rss-$what.json" "d['item_id']")" \
    --concurrency 256 --duration "${RSS_SECS}s" | sed -n 3p | sed 's/^/      /'
  echo "      after the buys: peak RSS $(rss $spid VmHWM)$goal"
  local t0; t0=$(date +%s%N)
  python3 - "$(admin_of "$slot")/admin/v1/sales/$rss_sale/reconcile" "$OUT/reconcile-rss-$what.json" <<'PY'
import os, sys, urllib.request
req = urllib.request.Request(sys.argv[1], method="POST", data=b"",
                             headers={"Authorization": "Bearer " + os.environ["SECKILL_ADMIN_TOKEN"]})
open(sys.argv[2], "wb").write(urllib.request.urlopen(req, timeout=600).read())
PY
  local took=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "      one reconciliation of its $(field "$OUT/reconcile-rss-$what.json" "sum(i['ledger_entries'] for i in d['items'])") ledger entries, in the same process: $(awk -v ms="$took" 'BEGIN {printf "%.1f s", ms / 1000}'), peak RSS $(rss $spid VmHWM)"
)
rss_step serve 6 " (goal <= 64 MiB)"
rss_step all 8 ""
trap - EXIT
# Every reservation above stays in Redis until its sale's end plus grace: drop this run's keys
# (and the peer's) so repeated benchmarks do not fill the local Redis.
for pattern in "${SECKILL_REDIS_KEY_PREFIX}*" "peer:*"; do
  redis-cli -h 127.0.0.1 -p "${SECKILL_STACK_REDIS_PORT:-16379}" --scan --pattern "$pattern" \
    | xargs -r -n 500 redis-cli -h 127.0.0.1 -p "${SECKILL_STACK_REDIS_PORT:-16379}" unlink >/dev/null
done

echo
echo "== MySQL persistence (cargo bench --bench persist)"
cargo bench --quiet --bench persist 2>/dev/null
echo
echo "== order expiry (cargo bench --bench expiry)"
cargo bench --quiet --bench expiry 2>/dev/null

exec 1>&3 3>&-
wait "$TEE" 2>/dev/null || true
python3 deploy/local/bench_docs.py bench "$OUT/rows.json" "$OUT/output.txt" "== memory"
