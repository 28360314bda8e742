"""Redis bytes per queued buyer: joins N buyers to one waiting room through the join script
itself (lua/queue_join.v1.lua, by EVALSHA over redis-cli --pipe, with the keys and arguments
the service sends), measures used_memory before and after, then removes the room's keys.

Usage: bench_queue_memory.py REDIS_URL KEY_PREFIX USERS JOIN_SCRIPT. Prints JSON.
"""

import hashlib
import json
import subprocess
import sys
import time

url, prefix, users, script = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
SALE = 999_999_999  # no such sale in MySQL: the room is only Redis keys
BUCKETS = 16_384


def cli(*args):
    return subprocess.run(["redis-cli", "-u", url, *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def used_memory():
    cli("MEMORY", "PURGE")
    info = cli("INFO", "memory")
    return int(next(l.split(":")[1] for l in info.splitlines() if l.startswith("used_memory:")))


def resp(*parts):
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        b = p if isinstance(p, bytes) else str(p).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


sha = cli("SCRIPT", "LOAD", open(script).read())
UID = "5a1e" * 8  # a sale's uid: a room's keys carry it from script v6 on
base = f"{prefix}sk:{{q{SALE}.{UID}}}"
counters = f"{base}:n"
expire_ms = int((time.time() + 3600) * 1000)
before = used_memory()
started = time.time()
pipe = subprocess.Popen(["redis-cli", "-u", url, "--pipe"], stdin=subprocess.PIPE,
                        stdout=subprocess.DEVNULL)
chunk = []
for i in range(users):
    digest = hashlib.sha256(f"bench-user-{i}".encode()).digest()[:8]
    bucket = int.from_bytes(digest[:2], "big") % BUCKETS
    chunk.append(resp("EVALSHA", sha, 2, f"{base}:u:{bucket}", counters, digest, "open",
                      12345, i // 20_000, expire_ms))
    if len(chunk) == 10_000:
        pipe.stdin.write(b"".join(chunk))
        chunk = []
pipe.stdin.write(b"".join(chunk))
pipe.stdin.close()
pipe.wait()
seconds = time.time() - started
after = used_memory()
seq = int(cli("HGET", counters, "seq") or 0)
keys = cli("--scan", "--pattern", f"{base}:*").splitlines()
encoding = cli("OBJECT", "ENCODING", f"{base}:u:0")
for k in range(0, len(keys), 1000):
    cli("UNLINK", *keys[k:k + 1000])
print(json.dumps({
    "users": users,
    "joined": seq,
    "bytes": after - before,
    "bytes_per_user": (after - before) / max(1, seq),
    "keys": len(keys),
    "bucket_encoding": encoding,
    "seconds": seconds,
}))
