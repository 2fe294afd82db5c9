"""The processes a chaos schedule runs and breaks: ``chatctl serve`` nodes and a private
``redis-server`` (on free ports, in the schedule's own directory: never the machine's Redis
on 6379), with the faults the runner applies to them."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:g} s")


class Node:
    """One ``chatctl serve`` process; restartable on the same port and data."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.port = free_port()
        self.args = args
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopped = False  # SIGSTOPped

    def start(self, timeout: float = 60) -> None:
        """Start the node; it must listen within ``timeout`` seconds (a loaded 2-core
        machine, load 22, once took over 20 s beside a forming Redis Cluster)."""
        cmd = [sys.executable, "-m", "chatctl", "serve", "--port", str(self.port), *self.args]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self.stopped = False
        _wait_port(self.port, self.proc, timeout, f"node {self.name}")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(sig)
            if sig == signal.SIGSTOP:
                self.stopped = True
            elif sig == signal.SIGCONT:
                self.stopped = False

    def wait(self, timeout: float) -> None:
        if self.proc is None:
            return
        if self.stopped:
            self.signal(signal.SIGCONT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def set_file_limit(self, limit: int) -> bool:
        """``RLIMIT_FSIZE`` of the running process (0: every write past the end fails, as a
        full disk); ``resource.RLIM_INFINITY`` frees it. False when the node is not running."""
        if not self.alive:
            return False
        assert self.proc is not None
        try:
            resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()


class RedisService:
    """A private ``redis-server`` with AOF (``appendfsync always``): acked means stored across a
    restart, as docs/reliability.md assumes for a durable Redis; or, not ``persistent``, one
    that keeps nothing on disk and starts empty after a restart."""

    def __init__(self, directory: Path, *, persistent: bool = True) -> None:
        self.port = free_port()
        self.persistent = persistent
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:  # nothing on disk: a restart starts empty
            args += ["--appendonly", "no"]
        args += ["--dir", str(self.dir)]
        args += ["--protected-mode", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, self.proc, timeout, "redis-server")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def chatctl_env(secret: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCTL_")}
    env.update(CHATCTL_SECRET=secret, CHATCTL_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    return env


__all__ = ["Node", "RedisService", "chatctl_env", "free_port"]
