"""Writes a benchmark's results into docs/BENCHMARKS.md, between its markers.

Usage: bench_docs.py SECTION ROWS_JSON [OUTPUT_TXT [FROM_LINE]]

ROWS_JSON is a list of {"figure", "measured", "ratio", "goal"} (ratio and goal may be empty).
The table's header names the run: date (UTC), machine (CPU model, cores, memory) and commit
(with "+changes" when the work tree differs from it). With OUTPUT_TXT, the script's output from
the first line starting with FROM_LINE on follows the table as a preformatted block.
"""

import datetime
import json
import os
import re
import subprocess
import sys

section, rows_file = sys.argv[1], sys.argv[2]
output_file = sys.argv[3] if len(sys.argv) > 3 else None
from_line = sys.argv[4] if len(sys.argv) > 4 else None
doc_path = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "BENCHMARKS.md")


def git(*args):
    return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "unknown CPU")
    kib = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    return f"{cpu}, {os.cpu_count()} cores, {kib / 1024 / 1024:.0f} GiB"


commit = git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
rows = json.load(open(rows_file))
cell = lambda s: str(s or "").replace("|", "\\|")
lines = [
    f"| figure (run {when} · {machine()} · commit {commit}) | measured | ratio, median [lowest, highest] | goal |",
    "|---|---|---|---|",
]
lines += [f"| {cell(r['figure'])} | {cell(r['measured'])} | {cell(r.get('ratio'))} | {cell(r.get('goal'))} |"
          for r in rows]
if output_file:
    text = open(output_file).read().splitlines()
    start = next((i for i, l in enumerate(text) if from_line and l.startswith(from_line)), len(text))
    rest = [l for l in text[start:] if l.strip()]
    if rest:
        lines += ["", "The rest of the same run's output:", "", "```", *rest, "```"]
body = "\n".join(lines)

doc = open(doc_path).read()
begin, end = f"<!-- results:{section} begin -->", f"<!-- results:{section} end -->"
pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
if not pattern.search(doc):
    sys.exit(f"bench_docs: docs/BENCHMARKS.md has no {begin} ... {end}")
open(doc_path, "w").write(pattern.sub(lambda _: f"{begin}\n{body}\n{end}", doc))
print(f"results written to docs/BENCHMARKS.md ({section})")
