"""What one room costs in Redis: ``MEMORY USAGE`` of each of its keys.

Starts a private redis-server on a free port (with the given stream node settings), fills
one room through the real :class:`~chatctl.broker.redis.RedisBroker` — ``--messages``
messages of ``--size`` characters (with client ids if asked) and ``--users`` present users
— and prints every key of the room with its type, length and bytes.

    PYTHONPATH=src python bench/redis_memory.py --messages 1
    PYTHONPATH=src python bench/redis_memory.py --messages 1000 --node-max-bytes 1024
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import redis

from chatctl.broker.redis.broker import RedisBroker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def fill(url: str, args: argparse.Namespace) -> None:
    broker = RedisBroker(url, history_size=args.history)
    await broker.start()
    try:
        for i in range(args.messages):
            text = f"{i:06d}" + "x" * max(0, args.size - 6)
            cid = f"c{i}" if args.client_ids else None
            await broker.publish("room", "alice", text, client_id=cid)
        for i in range(args.users):
            await broker.join("room", f"user{i}", f"node-{i}")
    finally:
        await broker.close()


def usage(r: redis.Redis, key: str) -> dict[str, Any]:
    kind = str(r.type(key))
    lengths: dict[str, Callable[[str], Any]] = {
        "stream": r.xlen,
        "hash": r.hlen,
        "zset": r.zcard,
        "string": r.strlen,
    }
    length = lengths[kind](key) if kind in lengths else None
    row: dict[str, Any] = {
        "key": key,
        "type": kind,
        "length": length,
        "bytes": r.memory_usage(key, samples=0),
        "encoding": r.object("encoding", key),
    }
    if kind == "stream":
        info = r.xinfo_stream(key, full=True)
        row["stream_nodes"] = info.get("radix-tree-nodes")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1)
    parser.add_argument("--size", type=int, default=100, help="characters per message")
    parser.add_argument("--client-ids", action="store_true")
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--node-max-bytes", type=int, help="stream-node-max-bytes")
    parser.add_argument("--node-max-entries", type=int, help="stream-node-max-entries")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("redis_memory: redis-server is not installed")
    port = free_port()
    cmd = [server, "--port", str(port), "--save", "", "--appendonly", "no"]
    if args.node_max_bytes is not None:
        cmd += ["--stream-node-max-bytes", str(args.node_max_bytes)]
    if args.node_max_entries is not None:
        cmd += ["--stream-node-max-entries", str(args.node_max_entries)]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([*cmd, "--dir", tmp], stdout=subprocess.DEVNULL)
        try:
            r = redis.Redis(port=port, decode_responses=True)
            deadline = time.monotonic() + 10
            while True:
                try:
                    r.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            asyncio.run(fill(f"redis://127.0.0.1:{port}/0", args))
            rows = [usage(r, k) for k in sorted(r.scan_iter("chatctl:{room}*"))]
            settings = r.config_get("stream-node-max-*")
        finally:
            proc.terminate()
            proc.wait(10)
    total = sum(row["bytes"] for row in rows)
    if args.json:
        print(json.dumps({"settings": settings, "keys": rows, "total": total}))
        return
    print(f"redis-server settings: {settings}")
    for row in rows:
        extra = f" nodes={row['stream_nodes']}" if "stream_nodes" in row else ""
        print(
            f"{row['key']:32s} {row['type']:7s} {row['encoding']:10s} "
            f"len={row['length']!s:6s} {row['bytes']:8d} bytes{extra}"
        )
    print(f"total: {total} bytes")


if __name__ == "__main__":
    main()
