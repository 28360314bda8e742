#!/usr/bin/env python3
"""Three cheap floods against a running seckill, and what got through each (Python's standard
library only). deploy/local/abuse.sh starts a service and runs this; to aim it at another:

  abuse.py --base-url http://127.0.0.1:18080 --admin-url http://127.0.0.1:18081 \\
           --jwt-secret HEX --sale 1 --item 1 [--mysql 'mariadb -h ... -u ... -p...']

1. cancels of made-up order ids, one buyer's token on 32 connections;
2. 1,000 connections trickling a request head a byte every 5 s, while /healthz is timed;
3. unauthenticated buys of an item that does not exist, for 8 s at full speed, while 40 real
   buyers buy the real item.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time
import urllib.parse
import uuid


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(secret: str, user: str) -> str:
    """An HS256 buyer token, as a login system would issue it."""
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": user, "iat": now, "exp": now + 600}).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def random_v7() -> str:
    """A UUIDv7 of now with random bits, as an attacker would make one up."""
    ms = int(time.time() * 1000)
    raw = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    raw[6] = 0x70 | (raw[6] & 0x0F)
    raw[8] = 0x80 | (raw[8] & 0x3F)
    return str(uuid.UUID(bytes=bytes(raw)))


async def request(url: str, method: str = "GET", headers=None, body: bytes = b"", timeout=10.0):
    """One HTTP/1.1 request on a fresh connection; the status, or None when it failed."""
    u = urllib.parse.urlsplit(url)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(u.hostname, u.port), timeout
        )
    except (OSError, asyncio.TimeoutError):
        return None
    lines = [f"{method} {u.path or '/'} HTTP/1.1", f"host: {u.hostname}", "connection: close",
             f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        return int(status_line.split()[1])
    except (OSError, asyncio.TimeoutError, IndexError, ValueError):
        return None
    finally:
        writer.close()


def com_select(mysql: str):
    if not mysql:
        return None
    out = subprocess.run(mysql + " -N -e \"SHOW GLOBAL STATUS LIKE 'Com_select'\"",
                         shell=True, capture_output=True, text=True)
    try:
        return int(out.stdout.split()[1])
    except (IndexError, ValueError):
        return None


def tally(statuses):
    counts = {}
    for s in statuses:
        key = "failed" if s is None else str(s)
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


async def cancel_flood(a):
    bearer = {"authorization": f"Bearer {token(a.jwt_secret, 'flooder')}"}
    before = com_select(a.mysql)
    started = time.monotonic()
    statuses = []
    for _ in range(9_600 // 32):
        batch = [request(f"{a.base_url}/api/v1/orders/{random_v7()}/cancel", "POST", bearer)
                 for _ in range(32)]
        statuses += await asyncio.gather(*batch)
    took = time.monotonic() - started
    after = com_select(a.mysql)
    await asyncio.sleep(took)
    idle = com_select(a.mysql)
    reached = "not measured (no --mysql)" if None in (before, after, idle) else \
        f"{after - before} MySQL SELECTs server-wide, against {idle - after} in as long idle"
    print(f"1. 9,600 cancels of made-up ids, one buyer, 32 connections, {took:.1f} s")
    print(f"   answers: {tally(statuses)}")
    print(f"   reached the stores: {reached}")


async def trickle(a, start, closed_at):
    u = urllib.parse.urlsplit(a.base_url)
    try:
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
    except OSError:
        closed_at.append(0.0)
        return
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
    while time.monotonic() - start < 90:
        try:
            data = await asyncio.wait_for(reader.read(512), 5.0)
            if not data:
                break
        except asyncio.TimeoutError:
            try:
                writer.write(b"a")
                await writer.drain()
            except OSError:
                break
        except OSError:
            break
    closed_at.append(time.monotonic() - start)
    writer.close()


async def slow_headers(a):
    start = time.monotonic()
    closed_at = []
    tasks = [asyncio.create_task(trickle(a, start, closed_at)) for _ in range(1_000)]
    worst, probes, failed = 0.0, 0, 0
    while not all(t.done() for t in tasks):
        t0 = time.monotonic()
        status = await request(f"{a.base_url}/healthz", timeout=5.0)
        worst = max(worst, time.monotonic() - t0)
        probes += 1
        failed += status != 200
        await asyncio.sleep(0.25)
    print("2. 1,000 connections trickling a request head, a byte every 5 s")
    print(f"   held at most {max(closed_at):.1f} s (all {len(closed_at)} closed by the server)")
    print(f"   /healthz meanwhile: {probes} checks, slowest {worst * 1000:.0f} ms, {failed} failed")


async def unauthenticated_flood(a):
    stop = time.monotonic() + 8
    unknown = f"{a.base_url}/api/v1/sales/{a.sale}/items/{a.item + 1_000_000}/orders"

    async def flooder():
        statuses = []
        while time.monotonic() < stop:
            statuses.append(await request(unknown, "POST"))
        return statuses

    async def buyers():
        statuses = []
        for n in range(40):
            await asyncio.sleep(0.15)
            bearer = {"authorization": f"Bearer {token(a.jwt_secret, f'real-{os.getpid()}-{n}')}"}
            statuses.append(await request(
                f"{a.base_url}/api/v1/sales/{a.sale}/items/{a.item}/orders", "POST", bearer))
        return statuses

    results = await asyncio.gather(buyers(), *[flooder() for _ in range(16)])
    flood = [s for r in results[1:] for s in r]
    print("3. unauthenticated buys of a missing item, 16 connections for 8 s, beside 40 buyers")
    print(f"   flood: {len(flood)} requests, answers {tally(flood)}")
    print(f"   real buyers: {tally(results[0])}")


def create_sale(a):
    """A live one-item sale through the admin API; its (sale, item)."""
    import urllib.request
    from datetime import datetime, timedelta, timezone
    now = datetime.now(timezone.utc)
    body = json.dumps({
        "name": "abuse", "starts_at": (now - timedelta(seconds=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "items": [{"sku": "abuse-1", "title": "Item", "price_cents": 100, "stock": 1000,
                   "per_user_limit": 1}],
    }).encode()
    req = urllib.request.Request(f"{a.admin_url}/admin/v1/sales", body, method="POST", headers={
        "authorization": f"Bearer {a.admin_token}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        sale = json.load(r)
    return sale["id"], sale["items"][0]["id"]


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-url", required=True)
    p.add_argument("--admin-url", required=True)
    p.add_argument("--jwt-secret", required=True)
    p.add_argument("--admin-token", help="to create the sale the floods aim at")
    p.add_argument("--sale", type=int, help="an existing live sale (else one is created)")
    p.add_argument("--item", type=int)
    p.add_argument("--mysql", default="", help="a mariadb command line, to count SELECTs")
    a = p.parse_args()
    if a.sale is None or a.item is None:
        if not a.admin_token:
            p.error("give --sale and --item, or --admin-token to create a sale")
        a.sale, a.item = create_sale(a)
        print(f"a live sale {a.sale} with item {a.item} (1,000 units, one per buyer)")
    await cancel_flood(a)
    await slow_headers(a)
    await unauthenticated_flood(a)


if __name__ == "__main__":
    asyncio.run(main())
