"""A real ``chatctl`` client process whose output lines the test can wait on."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO

from support.client_helpers import CHATCTL


class Watched:
    """``chatctl ARGS`` with stdin a pipe (or closed); a thread per output stream collects
    its lines, so the process never blocks on a full pipe and the test waits on events."""

    def __init__(self, *args: str, env: dict[str, str], stdin: bool = False) -> None:
        self.proc = subprocess.Popen(
            [*CHATCTL, *args],
            env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._changed = threading.Condition()
        self._threads = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for thread in self._threads:
            thread.start()

    def _read(self, stream: IO[str] | None, lines: list[str]) -> None:
        assert stream is not None
        for line in stream:
            with self._changed:
                lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
        """Block until ``predicate()`` holds (checked at each new line) or fail."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out waiting for {what or predicate}; stderr: {self.err[-5:]}"
                    )
                self._changed.wait(min(left, 0.5))

    def write(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait(self, timeout: float) -> int:
        """The exit status, once both output streams are read to their end."""
        status = self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(5)
        return status

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
