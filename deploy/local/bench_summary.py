"""The summary of deploy/local/bench.sh: medians and within-round ratios of the scenarios.

Usage: bench_summary.py OUT_DIR ROUNDS. Reads the loadtest's --json files NAME-ROUND.json;
scenarios that did not run (no peer, no baseline) are left out. The rows also go to
OUT_DIR/rows.json, for bench_docs.py.
"""

import json
import os
import statistics
import sys

out, rounds = sys.argv[1], int(sys.argv[2])
rs = range(1, rounds + 1)
rows = []


def runs(name):
    files = [os.path.join(out, f"{name}-{r}.json") for r in rs]
    if not all(os.path.exists(f) for f in files):
        return None
    return [json.load(open(f)) for f in files]


def t(x):
    return x["throughput_per_sec"]


def median_p99(xs):
    return statistics.median(x["latency"]["p99_ms"] for x in xs)


def row(label, xs, against=None, what="", goal=""):
    measured = f"{statistics.median(t(x) for x in xs):.0f} req/s, p99 {median_p99(xs):.2f} ms"
    line = f"   {label:<22} {statistics.median(t(x) for x in xs):>9.0f} req/s   p99 {median_p99(xs):6.2f} ms"
    ratio = ""
    if against is not None:
        ratios = sorted(t(xs[i]) / t(against[i]) for i in range(rounds))
        ratio = f"{what} {statistics.median(ratios):.2f} [{ratios[0]:.2f}, {ratios[-1]:.2f}]"
        line += f"   {ratio}"
        if goal:
            line += f"  ({goal})"
    print(line)
    rows.append({"figure": label, "measured": measured, "ratio": ratio, "goal": goal})


print(f"\n== summary over {rounds} interleaved rounds (same machine, same run)")
print("   ratios are taken within each round (the machine's speed drifts between rounds);")
print("   shown: median throughput and p99, and the median ratio [lowest, highest]")
health, peer_health = runs("healthz"), runs("peer-healthz")
row("healthz", health)
if peer_health:
    row("healthz vs peer", health, peer_health, "ratio to peer", "goal >= 0.95")
buy, peer_buy = runs("buy-replica"), runs("peer-buy")
soldout, peer_soldout = runs("soldout"), runs("peer-soldout")
limited = runs("limited")
if peer_buy:
    print("   against the reference peer (buy: seckill's default confirmation mode, replica):")
    row("buy", buy, peer_buy, "ratio to peer", "goal >= 1.5")
    row("sold-out", soldout, peer_soldout, "ratio to peer", "goal >= 1.0")
    row("rate-limited (429)", limited, peer_soldout, "ratio to peer sold-out", "goal >= 1.0")
    row("peer buy", peer_buy)
    row("peer sold-out", peer_soldout)
else:
    row("rate-limited (429)", limited)
print("   against seckill's own healthz:")
row("buy (replica)", buy, health, "ratio to healthz")
row("sold-out", soldout, health, "ratio to healthz")
row("sale page", runs("salepage"), health, "ratio to healthz")
print("   buy per confirmation mode, ratio to ledger mode (goal: the default >= 0.8):")
ledger = runs("buy-ledger")
for m in ["ledger", "replica", "kafka"]:
    row(f"buy {m}", runs(f"buy-{m}"), ledger, "ratio to ledger")
base = runs("base-buy")
if base:
    print("   before and after (BENCH_BASELINE), both in the default mode:")
    row("buy, this build", buy, base, "ratio to baseline", "goal >= 0.95")
    row("buy, baseline", base)

def redis_per_buy(name):
    """Median over the rounds of the Redis master's main-thread CPU and EVALSHA time per unit
    sold, in microseconds; None when the run or its samples are missing."""
    cpu, script = [], []
    for r in rs:
        files = [os.path.join(out, f"{name}-{r}{part}.json") for part in ("", ".redis-before", ".redis-after")]
        if not all(os.path.exists(f) for f in files):
            return None
        run, before, after = (json.load(open(f)) for f in files)
        sold = run["outcomes"]["reserved"]
        if sold == 0:
            return None
        cpu.append((after["cpu_s"] - before["cpu_s"]) * 1e6 / sold)
        script.append((after["evalsha_usec"] - before["evalsha_usec"]) / sold)
    return statistics.median(cpu), statistics.median(script)


print("   Redis CPU per buy (the master's main thread over each buy run, per unit sold; median):")
cpu_per_buy = {}
for name, label in [("buy-ledger", "buy ledger"), ("buy-replica", "buy replica"),
                    ("buy-kafka", "buy kafka"), ("peer-buy", "peer buy"), ("base-buy", "baseline buy")]:
    per = redis_per_buy(name)
    if per is None:
        continue
    cpu, script = per
    cpu_per_buy[name] = cpu
    print(f"   {label:<22} {cpu:>9.1f} µs CPU   {script:6.1f} µs in EVALSHA")
    rows.append({"figure": f"Redis CPU per buy, {label}",
                 "measured": f"{cpu:.1f} µs (EVALSHA {script:.1f} µs)", "ratio": "",
                 "goal": "<= 10 µs" if label.startswith("buy ") else ""})

# The modelled ceiling of one item: the buys per second the one Redis core that owns its slot
# could serve if it did nothing else, one second over the CPU a buy costs that core.
for name, label in [("buy-replica", "buy (default mode)"), ("peer-buy", "peer buy")]:
    if name not in cpu_per_buy:
        continue
    ceiling = 1e6 / cpu_per_buy[name]
    print(f"   ceiling of one item, {label:<18} {ceiling:>9.0f} buys/s on one Redis core (1 s / {cpu_per_buy[name]:.1f} µs)")
    rows.append({"figure": f"modelled ceiling of one unsharded item, {label}",
                 "measured": f"{ceiling:.0f} buys/s on one Redis core", "ratio": "", "goal": ""})

b70 = json.load(open(os.path.join(out, "buy70.json")))
# The goal is judged by the loadtest itself (--threshold 'p99<=5ms' in bench.sh).
goals = "; ".join(
    f"goal {x['threshold']}: {'met' if x['ok'] else 'MISSED'}" for x in b70.get("thresholds", [])
)
print(f"   buy @70% (open loop)   {t(b70):>9.0f} req/s   p99 {b70['latency']['p99_ms']:6.2f} ms  ({goals or 'no goal'})")
rows.append({"figure": "buy @70% of its maximum (open loop)",
             "measured": f"{t(b70):.0f} req/s, p99 {b70['latency']['p99_ms']:.2f} ms", "ratio": "",
             "goal": goals})
warning = (b70.get("schedule") or {}).get("warning")
if warning:
    print(f"   warning: {warning}")
json.dump(rows, open(os.path.join(out, "rows.json"), "w"), indent=1)
