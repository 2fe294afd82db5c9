"""``chatctl serve --workers N``: N server processes on one port, acting as one server.

The process the user starts becomes a small supervisor: it forks N workers before any event
loop exists and runs no server itself. Each worker is a complete ``chatctl serve`` node with
its own broker connections; all bind the same port with ``SO_REUSEPORT``, so the kernel
spreads new connections over them, and they share rooms, history, presence and
de-duplication through Redis (or a Redis Cluster) exactly like nodes on different hosts.
Without Redis there is nothing to share, so ``--workers`` needs a Redis URL.

- Signals: SIGTERM and SIGINT sent to the supervisor are passed on to every worker (SIGTERM:
  each drains its clients with 1012, as one ``chatctl serve`` does; SIGINT: closes them with
  1001); the supervisor exits once every worker has stopped, with status 0 if they all
  stopped cleanly. SIGHUP is passed on too and stops nothing: each worker reads its token
  key again, as one ``chatctl serve`` does (docs/deploy.md).
- A worker that dies (a crash, the OOM killer) is logged and started again; one that keeps
  dying right after its start is restarted after a growing delay (up to 30 s). If a worker
  cannot even start the first time (port in use, bad Redis credentials), everything stops
  with that worker's error and status.
- The supervisor's death ends its workers: each asks the kernel for a SIGTERM when its
  parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``) and also checks its parent's pid every
  half second (other systems, and a parent that died before the ``prctl``). A SIGKILLed
  supervisor thus leaves no orphan serving on the port; its workers drain (1012) and exit.
- The port is the supervisor's alone: ``SO_REUSEPORT`` lets any process of the same user bind
  a port its workers hold, so a second ``chatctl serve --workers`` (or a first one's orphans)
  would share the port silently. Before forking, the supervisor binds the address once
  without ``SO_REUSEPORT`` (:func:`check_port_free`): that fails while any socket listens
  there, and the supervisor says so and exits 2.
- ``/healthz`` and ``/metrics`` on the shared port are answered by whichever worker the
  kernel picks. With ``status_port`` P, worker K (1..N) also answers them alone on port
  P+K-1 of the same host, so each worker can be scraped and health-checked on its own
  (docs/deploy.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from types import FrameType
from typing import TYPE_CHECKING

from chatctl.errors import ChatctlError, UsageError
from chatctl.status import ExitStatus

if TYPE_CHECKING:
    from websockets.asyncio.server import Server

    from chatctl.server import ChatServer

log = logging.getLogger("chatctl.server")

#: Signals the supervisor passes on to every worker.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
#: A worker that dies sooner than this after its start counts as failing at start.
QUICK_DEATH = 5.0
MAX_RESTART_DELAY = 30.0
#: Seconds between two checks of a worker's parent pid (the fallback of PR_SET_PDEATHSIG).
PARENT_CHECK = 0.5
#: linux/prctl.h
PR_SET_PDEATHSIG = 1


def cpu_count() -> int:
    """Cores this process may run on (what ``--workers 0`` starts)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: Runs one worker in the forked child: ``(worker number 1..N, announce)``; it calls
#: ``announce()`` once it listens, and returns when the worker stopped.
WorkerMain = Callable[[int, Callable[[], None]], None]


@dataclass
class _Worker:
    number: int
    pid: int
    started: float
    ready: bool = False
    #: consecutive deaths soon after a start
    quick_deaths: int = 0


class Supervisor:
    """Forks ``count`` workers running ``main`` and keeps them running until a signal."""

    def __init__(
        self,
        count: int,
        main: WorkerMain,
        *,
        ready_timeout: float = 60.0,
        address: tuple[str, int] | None = None,
    ) -> None:
        """``address``: the (host, port) the workers will share, checked free before they
        start (:func:`check_port_free`)."""
        if count < 1:
            raise UsageError("--workers must be at least 1 (0 means one per core)")
        self.count = count
        self.address = address
        self.main = main
        self.ready_timeout = ready_timeout
        self._workers: dict[int, _Worker] = {}  # by pid
        self._stopping: signal.Signals | None = None
        self._ready_r, self._ready_w = os.pipe()
        self._failed_start: int | None = None

    def run(self) -> int:
        """Start the workers and supervise them; the exit status of the whole server.

        Raises :class:`UsageError` when the address is in use (nothing was started)."""
        if self.address is not None:
            check_port_free(*self.address)
        self._pid = os.getpid()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in FORWARDED}
        try:
            for number in range(1, self.count + 1):
                self._spawn(number)
            if not self._wait_ready():
                self._signal_all(signal.SIGTERM)
            return self._supervise()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self._ready_r)
            os.close(self._ready_w)

    # ------------------------------------------------------------------ parent

    def _spawn(self, number: int, quick_deaths: int = 0, *, ready: bool = False) -> None:
        """Fork worker ``number``; ``ready`` for a restart (it serves once it listens, and if
        it dies before, it is restarted again rather than stopping the server)."""
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the supervisor's code
            self._child(number)
        self._workers[pid] = _Worker(number, pid, time.monotonic(), ready, quick_deaths)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        sig = signal.Signals(signum)
        if sig == signal.SIGHUP:  # reload, not stop: each worker logs its own reload
            self._signal_all(sig)
            return
        if self._stopping is None:
            self._stopping = sig
            log.info("%s: stopping %d workers", sig.name, len(self._workers))
        self._signal_all(sig)

    def _signal_all(self, sig: signal.Signals) -> None:
        for pid in list(self._workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _wait_ready(self) -> bool:
        """Until every worker listens (True), or one failed to start or a signal came."""
        deadline = time.monotonic() + self.ready_timeout
        pending = set(range(1, self.count + 1))
        while pending and self._stopping is None and self._failed_start is None:
            left = deadline - time.monotonic()
            if left <= 0:
                log.error("workers %s did not start listening in time", sorted(pending))
                self._failed_start = ExitStatus.ERROR
                return False
            readable, _, _ = select.select([self._ready_r], [], [], min(left, 0.1))
            if readable:
                for number in os.read(self._ready_r, 1024).split():
                    pending.discard(int(number))
            self._reap(block=False)
        if pending:
            return False
        for w in self._workers.values():
            w.ready = True
        log.info("%d workers listening, pids %s", self.count, sorted(self._workers))
        return True

    def _supervise(self) -> int:
        status = ExitStatus.OK
        while self._workers:
            for _, code in self._reap(block=True):
                if code != 0 and self._stopping is not None:
                    status = ExitStatus.ERROR  # a worker did not stop cleanly
        if self._failed_start is not None:
            return self._failed_start
        return status

    def _reap(self, *, block: bool) -> list[tuple[_Worker, int]]:
        """Collect the workers that exited; restart them unless stopping."""
        done: list[tuple[_Worker, int]] = []
        while self._workers:
            try:
                pid, raw = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            worker = self._workers.pop(pid, None)
            if worker is None:
                continue
            code = os.waitstatus_to_exitcode(raw)
            done.append((worker, code))
            self._after_exit(worker, code)
            block = False  # one blocking wait per call, then collect whatever else is done
        return done

    def _after_exit(self, worker: _Worker, code: int) -> None:
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
        if self._stopping is not None or self._failed_start is not None:
            log.debug("worker %d (pid %d) %s", worker.number, worker.pid, how)
            return
        if not worker.ready:
            # It never listened: the same would happen again. Stop all with its status.
            log.error(
                "worker %d (pid %d) %s before listening: stopping", worker.number, worker.pid, how
            )
            self._failed_start = code if code > 0 else ExitStatus.ERROR
            self._signal_all(signal.SIGTERM)
            return
        quick = time.monotonic() - worker.started < QUICK_DEATH
        deaths = worker.quick_deaths + 1 if quick else 0
        delay = min(MAX_RESTART_DELAY, 0.5 * 2 ** (deaths - 1)) if deaths else 0.0
        log.warning(
            "worker %d (pid %d) %s: restarting it%s",
            worker.number,
            worker.pid,
            how,
            f" in {delay:.1f}s" if delay else "",
        )
        if delay:
            self._sleep(delay)
            if self._stopping is not None:
                return
        self._spawn(worker.number, deaths, ready=True)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self._stopping is None and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))

    # ------------------------------------------------------------------ child

    def _child(self, number: int) -> None:
        status = ExitStatus.OK
        try:
            for sig in FORWARDED:
                signal.signal(sig, signal.SIG_DFL)
            _die_with_parent(self._pid)
            os.close(self._ready_r)
            _tag_log_records(number)

            def announce() -> None:
                os.write(self._ready_w, f"{number}\n".encode())

            self.main(number, announce)
        except ChatctlError as exc:
            print(f"chatctl: worker {number}: {exc}", file=sys.stderr)
            status = exc.status
        except KeyboardInterrupt:
            status = ExitStatus.OK
        except BaseException:
            traceback.print_exc()
            status = ExitStatus.ERROR
        finally:
            logging.shutdown()
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(status)


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`UsageError` if a socket listens on ``host:port`` (every address the
    host resolves to, as the server binds them): a bind without ``SO_REUSEPORT`` fails then,
    whoever holds it, even processes whose sockets would let ours share the port. (A socket
    only in TIME_WAIT does not count: ``SO_REUSEADDR``, as the server itself binds.)"""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    for family, kind, proto, _, addr in dict.fromkeys(infos):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(addr)
            except OSError as exc:
                why = exc.strerror or str(exc)
                if exc.errno == errno.EADDRINUSE:
                    why += " (another chatctl serve, or the workers of one, may be running)"
                raise UsageError(f"cannot listen on {host}:{port}: {why}") from None


def _die_with_parent(parent: int) -> None:
    """In a worker: be sent SIGTERM when the supervisor dies (Linux), and check its pid
    every :data:`PARENT_CHECK` seconds in case that is not available or came too late."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK)
        log.warning("the supervisor (pid %d) is gone: stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="chatctl-parent-check", daemon=True).start()


def _tag_log_records(number: int) -> None:
    """Prefix every log message of this worker with ``worker N:``."""
    factory = logging.getLogRecordFactory()

    def record(*args: object, **kwargs: object) -> logging.LogRecord:
        rec = factory(*args, **kwargs)
        rec.msg = f"worker {number}: {rec.msg}"
        return rec

    logging.setLogRecordFactory(record)


async def serve_status(server: ChatServer, port: int) -> Server:
    """Answer ``/healthz`` and ``/metrics`` of ``server`` alone on ``port`` (same host): each
    worker's own, where the shared port answers for whichever worker the kernel picks."""
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.http11 import Request, Response

    from chatctl.server.http import plain_response, route_http

    def answer(conn: ServerConnection, request: Request) -> Response:
        response = route_http(server, request)
        if response is None:
            return plain_response(HTTPStatus.NOT_FOUND, "only /healthz and /metrics here\n")
        return response

    async def refuse(conn: ServerConnection) -> None:  # never reached: every path answered
        await conn.close()

    return await serve(refuse, server.settings.host, port, process_request=answer)
