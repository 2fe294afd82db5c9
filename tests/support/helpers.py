"""Shared test helpers: free ports, tokens, real servers (in-process or `chatctl serve`
processes), real redis-server processes, and websockets clients that wait on frames."""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
from websockets.asyncio.client import ClientConnection, connect

from chatctl.broker.memory import MemoryBroker
from chatctl.server import ChatServer, ServerSettings
from chatctl.tokens.mint import mint
from chatctl.tokens.verify import Verifier

SECRET = b"chatctl-test-secret-0123456789abcdefghij"
IN_CI = bool(os.environ.get("CI"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_token(
    user: str, *, ttl: float = 3600, rooms: list[str] | None = None, **kwargs: Any
) -> str:
    return mint(SECRET, user, ttl=ttl, rooms=rooms, **kwargs)


def verifier() -> Verifier:
    return Verifier.hmac(SECRET)


def ws_url(port: int, room: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"ws://127.0.0.1:{port}/ws/{room}" + (f"?{query}" if query else "")


@asynccontextmanager
async def client(
    port: int, room: str, user: str, *, token: str | None = None, **params: Any
) -> AsyncIterator[ClientConnection]:
    """A real websockets client authenticated as ``user`` with a Bearer header."""
    headers = {"Authorization": f"Bearer {token or make_token(user)}"}
    # max_queue=None: a test that does not read every frame must not stall its own close.
    async with connect(
        ws_url(port, room, **params),
        additional_headers=headers,
        open_timeout=10,
        max_queue=None,
    ) as ws:
        yield ws


async def recv_json(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    data = await asyncio.wait_for(ws.recv(), timeout)
    obj: dict[str, Any] = json.loads(data)
    return obj


async def recv_type(ws: ClientConnection, ftype: str, timeout: float = 10) -> dict[str, Any]:
    """Read frames until one of type ``ftype`` arrives (others are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await recv_json(ws, timeout)
            if frame["type"] == ftype:
                return frame


def presence_changes(frame: dict[str, Any]) -> list[tuple[str, str]]:
    """The (user, event) changes a ``presence`` or ``presence_batch`` frame carries."""
    if frame["type"] == "presence":
        return [(frame["user"], frame["event"])]
    if frame["type"] == "presence_batch":
        leaves = [(u, "leave") for u in frame["leaves"]]
        return leaves + [(u, "join") for u in frame["joins"]]
    return []


async def recv_presence(ws: ClientConnection, timeout: float = 10) -> list[tuple[str, str]]:
    """Read frames until a ``presence`` or ``presence_batch``; return its changes."""
    async with asyncio.timeout(timeout):
        while True:
            changes = presence_changes(await recv_json(ws, timeout))
            if changes:
                return changes


async def recv_messages(ws: ClientConnection, n: int, timeout: float = 10) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while len(out) < n:
        out.append(await recv_type(ws, "message", timeout))
    return out


# ----------------------------------------------------------------------------- processes


def chatctl_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCTL_")}
    env["CHATCTL_SECRET"] = SECRET.decode()
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class ServeProcess:
    """A real ``chatctl serve`` process on a free port; ready once it logs 'listening on'.

    Its rooms go to ``data_dir`` (a new temporary directory unless given, or the
    ``CHATCTL_DATA_DIR`` of ``env``): a test never writes to the user's ~/.local/share, and a
    test that restarts a server passes the same ``data_dir`` again."""

    def __init__(
        self,
        *args: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ):
        self.port = port or free_port()
        self.args = args
        self.env = dict(env or chatctl_env())
        if data_dir is None and "CHATCTL_DATA_DIR" not in self.env:
            data_dir = tempfile.mkdtemp(prefix="chatctl-data-")
            atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
        if data_dir is not None:
            self.env["CHATCTL_DATA_DIR"] = os.fspath(data_dir)
        self.data_dir = self.env["CHATCTL_DATA_DIR"]
        self.proc: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self._drain: threading.Thread | None = None
        self._listening = threading.Event()

    def start(self, timeout: float = 15) -> ServeProcess:
        cmd = [sys.executable, "-m", "chatctl", "serve", "--port", str(self.port), *self.args]
        self.proc = subprocess.Popen(
            cmd,
            env=self.env,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        # A thread reads stderr from the start, so a chatty server never blocks on a full
        # pipe and a silent one cannot hang the test past `timeout`.
        self._listening = threading.Event()
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()
        if self._listening.wait(timeout) and self.proc.poll() is None:
            return self
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("chatctl serve did not start in time:\n" + self.read_log())
        raise RuntimeError(f"chatctl serve exited early: {self.read_log()}")

    def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            if "listening on" in line:
                self._listening.set()
        self._listening.set()  # end of output: the process exited

    def read_log(self) -> str:
        """What the process wrote to stderr so far (everything, once it has exited)."""
        if self.proc is not None and self.proc.poll() is not None and self._drain is not None:
            self._drain.join(5)
        return "".join(self.log)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class RedisServer:
    """A private ``redis-server`` on a free port in a temporary directory.

    Tests never touch the machine's shared Redis on 6379.
    """

    def __init__(
        self, port: int | None = None, *, persistent: bool = False, args: tuple[str, ...] = ()
    ) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="chatctl-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        #: AOF with fsync on every write: a restart keeps everything acknowledged
        self.persistent = persistent
        #: more redis-server options (ACL users, a unix socket...)
        self.args = args

    @property
    def socket_path(self) -> str:
        """Where ``unixsocket()`` listens."""
        return os.path.join(self.dir, "redis.sock")

    def unixsocket(self) -> tuple[str, ...]:
        return ("--unixsocket", self.socket_path, "--unixsocketperm", "700")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        binary = require_redis_server()
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                "always",
                "--dir",
                self.dir,
                "--protected-mode",
                "no",
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith((b"+PONG", b"-NOAUTH")):  # up (with a password)
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> RedisServer:
        """Stop, then start again on the same port and directory (data kept if persistent)."""
        self.stop()
        return self.start()

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets open but answers nothing (a hung server)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def client(self) -> Any:
        """A synchronous redis-py client to this server (for inspecting it in tests)."""
        import redis

        return redis.Redis(port=self.port, decode_responses=True, protocol=2)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def require_tool(name: str, why: str) -> str:
    """The ``name`` binary; skip loudly on a user's machine without it, fail under CI."""
    binary = shutil.which(name)
    if binary is None:
        message = f"{name} is not installed: {why}"
        if IN_CI:
            pytest.fail(message + " -- CI must not pass by skipping", pytrace=False)
        pytest.skip(message)
    return binary


def require_redis_server() -> str:
    return require_tool("redis-server", "Redis tests need it (apt-get install redis-server)")


def wait_until(predicate: Any, timeout: float = 10, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def make_server(**settings: object) -> ChatServer:
    history = int(settings.pop("history_size", 1000))  # type: ignore[call-overload]
    broker = MemoryBroker(history_size=history)
    return ChatServer(
        ServerSettings(port=0, history_size=history, **settings),  # type: ignore[arg-type]
        verifier(),
        broker,
    )


def make_tls_files(directory: str) -> dict[str, str]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it (PEM files)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chatctl test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - day)
        .not_valid_after(now + day)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - day)
        .not_valid_after(now + day)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = {
        "ca": ca.public_bytes(pem),
        "cert": cert.public_bytes(pem),
        "key": key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = os.path.join(directory, f"{name}.pem")
        with open(paths[name], "wb") as f:
            f.write(data)
    return paths


#: The lifetime of a token that a test lets expire while a ``chatctl`` process uses it: longer
#: than such a process takes to start and connect on a loaded 2-core machine (over 2 s was
#: seen at load 13, with the suite's xdist workers beside it).
SHORT_TTL = 5.0


def timed_token(user: str, ttl: float, *, secret: bytes = SECRET, **claims: Any) -> str:
    """A token expiring exactly ``ttl`` seconds from now (``make_token`` rounds to seconds)."""
    import jwt

    now = time.time()
    return jwt.encode({"sub": user, "iat": int(now), "exp": now + ttl, **claims}, secret)


def short_leeway_server(leeway: float = 0.5) -> ChatServer:
    """An in-process server that closes a connection ``leeway`` s after its token's exp
    (``chatctl serve`` waits 5 s), so token-expiry tests stay short."""
    return ChatServer(ServerSettings(port=0), Verifier.hmac(SECRET, leeway=leeway), MemoryBroker())
