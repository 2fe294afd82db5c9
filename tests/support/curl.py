"""The real ``curl`` binary against a server in this process (run without blocking its loop)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from support.helpers import require_tool


@dataclass
class CurlResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def curl_path() -> str:
    return require_tool("curl", "the HTTP API is tested with the real curl")


async def curl(port: int, path: str, *args: str, token: str | None = None) -> CurlResult:
    """``curl -s -i ARGS http://127.0.0.1:PORT/PATH``: the status, the last answer's headers
    (names in lower case) and body."""
    auth = ["-H", f"Authorization: Bearer {token}"] if token is not None else []
    proc = await asyncio.create_subprocess_exec(
        curl_path(),
        "-s",
        "-i",
        "--max-time",
        "20",
        *auth,
        *args,
        f"http://127.0.0.1:{port}{path}",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return CurlResult(status, headers, body)


class CurlStream:
    """``curl -s -N`` following a Server-Sent Events stream, read event by event."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def event(self, timeout: float = 10) -> dict[str, str]:
        """The next event's fields (``event``, ``data``, ``id``); comments are skipped."""
        assert self.proc.stdout is not None
        fields: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    raise EOFError("the stream ended")
                line = line.rstrip("\n")
                if not line:
                    if "event" in fields:
                        return fields
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = value

    async def until(self, event: str, timeout: float = 10) -> dict[str, Any]:
        """The data of the next event named ``event`` (others are skipped), parsed."""
        while True:
            fields = await self.event(timeout)
            if fields["event"] == event:
                data: dict[str, Any] = json.loads(fields["data"])
                data["_id"] = fields.get("id")
                return data

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


@asynccontextmanager
async def curl_stream(port: int, path: str, *args: str) -> AsyncIterator[CurlStream]:
    proc = await asyncio.create_subprocess_exec(
        curl_path(),
        "-s",
        "-N",
        *args,
        f"http://127.0.0.1:{port}{path}",
        stdout=asyncio.subprocess.PIPE,
    )
    stream = CurlStream(proc)
    try:
        yield stream
    finally:
        await stream.close()
