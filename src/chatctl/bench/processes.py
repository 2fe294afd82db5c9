"""Where the bench's workers run: in the driver's process (``--procs 1``) or each in a child
process, driven through a pipe (both ends are here), on uvloop when it is installed."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chatctl.bench.options import BenchError
from chatctl.bench.worker import Worker


def loop_name() -> str:
    """The event loop this process's workers run on: uvloop when installed."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run_loop(coro: Any) -> Any:
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def serve_pipe(pipe: Any, worker_args: dict[str, Any]) -> None:
    """Child-process entry point: build a worker, then run the calls the driver sends as
    ``(method, kwargs)`` and send back each result (or ``("error", text)``), until ``close``."""

    async def main() -> None:
        worker = Worker(**worker_args)
        loop = asyncio.get_running_loop()
        while True:
            method, kwargs = await loop.run_in_executor(None, pipe.recv)
            try:
                result = await getattr(worker, method)(**kwargs)
            except Exception as exc:  # reported to the driver, which fails the run
                pipe.send(("error", f"{type(exc).__name__}: {exc}"))
                return
            pipe.send(("ok", result))
            if method == "close":
                return

    with contextlib.suppress(KeyboardInterrupt):
        run_loop(main())


class LocalWorker:
    """A worker in this process (``--procs 1``)."""

    def __init__(self, args: dict[str, Any]) -> None:
        self.worker = Worker(**args)

    async def call(self, method: str, **kwargs: Any) -> Any:
        return await getattr(self.worker, method)(**kwargs)

    def stop(self) -> None:
        return None


class ChildWorker:
    """A worker in a child process, called through a pipe."""

    def __init__(self, args: dict[str, Any], executor: ThreadPoolExecutor) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve_pipe, args=(child, args), daemon=True)
        self.proc.start()
        self.executor = executor

    async def call(self, method: str, **kwargs: Any) -> Any:
        self.pipe.send((method, kwargs))
        loop = asyncio.get_running_loop()
        try:
            status, result = await loop.run_in_executor(self.executor, self.pipe.recv)
        except EOFError:
            raise BenchError(f"load process {self.proc.pid} died during {method}") from None
        if status != "ok":
            raise BenchError(f"load process {self.proc.pid} failed during {method}: {result}")
        return result

    def stop(self) -> None:
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
