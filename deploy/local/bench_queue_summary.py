"""The summary of deploy/local/bench-queue.sh: the poll path against /healthz (ratios within a
round), Redis bytes per queued buyer, and the crowd's figures, each beside its goal.

Usage: bench_queue_summary.py OUT_DIR ROUNDS. The rows also go to OUT_DIR/rows.json, for
bench_docs.py.
"""

import json
import os
import statistics
import subprocess
import sys

out, rounds = sys.argv[1], int(sys.argv[2])
rows = []


def row(figure, measured, goal="", ratio=""):
    rows.append({"figure": figure, "measured": measured, "ratio": ratio, "goal": goal})


def load(name):
    return json.load(open(os.path.join(out, name)))


def verdict(ok):
    return "met" if ok else "NOT met"


commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                        text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"waiting room on {os.cpu_count()} x {cpu}, commit {commit}")

health = [load(f"healthz-{r}.json") for r in range(1, rounds + 1)]
poll = [load(f"poll-{r}.json") for r in range(1, rounds + 1)]
t = lambda x: x["throughput_per_sec"]
ratios = sorted(t(p) / t(h) for p, h in zip(poll, health))
ratio = statistics.median(ratios)
print(f"   healthz       {statistics.median(map(t, health)):>9.0f} req/s")
print(f"   queue poll    {statistics.median(map(t, poll)):>9.0f} req/s   poll/healthz {ratio:.2f} "
      f"[{ratios[0]:.2f}, {ratios[-1]:.2f}] in {rounds} rounds (goal >= 0.9: {verdict(ratio >= 0.9)})")
row("healthz", f"{statistics.median(map(t, health)):.0f} req/s")
row("poll of a waiting ticket", f"{statistics.median(map(t, poll)):.0f} req/s",
    f">= 0.9: {verdict(ratio >= 0.9)}", f"to healthz {ratio:.2f} [{ratios[0]:.2f}, {ratios[-1]:.2f}]")

m = load("memory.json")
print(f"   memory        {m['joined']:,} queued buyers: {m['bytes_per_user']:.1f} B each in Redis "
      f"(goal <= 64: {verdict(m['bytes_per_user'] <= 64)}), {m['keys']:,} keys, buckets "
      f"{m['bucket_encoding']}, joined in {m['seconds']:.1f} s")
row("Redis per queued buyer", f"{m['bytes_per_user']:.1f} B ({m['joined']:,} joined, {m['keys']:,} keys)",
    f"<= 64 B: {verdict(m['bytes_per_user'] <= 64)}")

c = load("crowd.json")
per_user = c["requests_per_user"]
print(f"   crowd         {c['users']:,} buyers for {c['units_sold']:,} units: {per_user:.2f} requests "
      f"per buyer (goal <= 5: {verdict(per_user <= 5)}), {c['requests_per_unit_sold']:.1f} per unit sold")
row(f"requests per buyer, {c['users']:,} buyers for {c['units_sold']:,} units",
    f"{per_user:.2f} ({c['requests_per_unit_sold']:.1f} per unit sold)", f"<= 5: {verdict(per_user <= 5)}")
o = c.get("open")
if o:
    print(f"   open sale     the same crowd without a queue: {o['requests_per_user']:.2f} requests per "
          f"buyer, {o['requests_per_unit_sold']:.1f} per unit sold")
    row("the same crowd on an open sale, requests per buyer",
        f"{o['requests_per_user']:.2f} ({o['requests_per_unit_sold']:.1f} per unit sold)")
f = c.get("fairness")
if f:
    print(f"   fairness      after the start, {f['users']:,} buyers: Kendall tau {f['kendall_tau']:.4f} "
          f"(goal >= 0.99: {verdict(f['kendall_tau'] >= 0.99)})")
    row(f"Kendall tau after the start, {f['users']:,} buyers", f"{f['kendall_tau']:.4f}",
        f">= 0.99: {verdict(f['kendall_tau'] >= 0.99)}")
p = c.get("pre_queue")
if p:
    chi = p.get("chi_square") or {}
    print(f"   pre-queue     {p['users']:,} buyers: tau {p['kendall_tau']:.4f} (z {p['z_score']:.2f}), "
          f"chi-square p {chi.get('p_value', float('nan')):.3f}: uniform {'yes' if p['uniform'] else 'no'}")
    row(f"pre-queue draw, {p['users']:,} buyers",
        f"tau {p['kendall_tau']:.4f} (z {p['z_score']:.2f}), chi-square p {chi.get('p_value', float('nan')):.3f}",
        f"uniform (|z| < 3.29 and chi-square p > 0.001): {'yes' if p['uniform'] else 'no'}")
s = c.get("sellout")
if s:
    print(f"   after sell-out {s['users']:,} told sold out: waited max {s['max_ms']:.0f} ms, p99 "
          f"{s['p99_ms']:.0f} ms, {s['over_2s']:,} over 2 s (goal none: {verdict(s['over_2s'] == 0)})")
    row(f"waits after the sell-out, {s['users']:,} told sold out",
        f"max {s['max_ms']:.0f} ms, p99 {s['p99_ms']:.0f} ms, {s['over_2s']:,} over 2 s",
        f"none over 2 s: {verdict(s['over_2s'] == 0)}")
fit_path = os.path.join(out, "crowd-fit.json")
if os.path.exists(fit_path):
    fit = load("crowd-fit.json").get("sellout")
    if fit:
        print(f"   after sell-out, {fit['users']:,} told sold out in a crowd these cores poll once a second: "
              f"waited max {fit['max_ms']:.0f} ms, p99 {fit['p99_ms']:.0f} ms, {fit['over_2s']:,} over 2 s")
        row(f"waits after the sell-out, {fit['users']:,} told sold out (a crowd these cores can poll once a second)",
            f"max {fit['max_ms']:.0f} ms, p99 {fit['p99_ms']:.0f} ms, {fit['over_2s']:,} over 2 s",
            f"none over 2 s: {verdict(fit['over_2s'] == 0)}")
q = c.get("queue_time")
if q:
    print(f"   queue time    join to admission, {q['count']:,} admitted: p50 {q['p50_ms']:.0f} ms, "
          f"p99 {q['p99_ms']:.0f} ms")
    row(f"queue time, join to admission, {q['count']:,} admitted", f"p50 {q['p50_ms']:.0f} ms, p99 {q['p99_ms']:.0f} ms")
json.dump(rows, open(os.path.join(out, "rows.json"), "w"), indent=1)
