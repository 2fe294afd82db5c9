"""The stdout side of ``chatctl join`` and ``chatctl send --json``: lines out, and a reader
that went away.

- :func:`write_line` writes and flushes one line; a reader that closed the pipe raises
  :class:`~chatctl.errors.OutputClosed` (status 141, SIGPIPE's convention), any other
  failure (``> /dev/full``: ENOSPC, EIO) :class:`~chatctl.errors.OutputFailed` (status 7).
  Both are ``ChatctlError``, never ``OSError``: the command-line layer reads an ``EPIPE``
  ``OSError`` as its own failure (status 1).
- :func:`watch_closed` notices the reader of a pipe going away while nothing is written
  (``chatctl join ops | head -1`` in a quiet room): the write end of a pipe whose read ends
  are all closed polls as ``POLLERR``, which the event loop's selector reports to a reader
  callback. Only for pipes: a terminal or a socket on stdout may be readable for other
  reasons, and a regular file cannot be polled.
- :func:`silence_stdout` points fd 1 at ``/dev/null`` once output failed, so the
  interpreter's final flush of ``sys.stdout`` does not fail a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import stat
import sys
from typing import TextIO

from chatctl.errors import OutputClosed, OutputFailed

#: poll() events meaning the read end of a pipe is gone
GONE = select.POLLERR | select.POLLHUP


def write_line(out: TextIO, line: str) -> None:
    """Write ``line`` and a newline to ``out`` and flush; raise :class:`OutputClosed` when
    the reader went away, :class:`OutputFailed` when writing failed otherwise."""
    try:
        out.write(line + "\n")
        out.flush()
    except BrokenPipeError:
        raise OutputClosed("") from None
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            raise OutputClosed("") from None
        raise OutputFailed(f"cannot write to stdout: {exc.strerror or exc}") from None
    except ValueError:  # closed file object
        raise OutputClosed("") from None


def reader_gone(fd: int) -> bool:
    """True when ``fd`` is the write end of a pipe nobody reads any more."""
    poller = select.poll()
    poller.register(fd, 0)  # errors and hang-ups are always reported
    try:
        return any(events & GONE for _, events in poller.poll(0))
    except OSError:
        return False


def _pipe_fd(out: TextIO) -> int | None:
    try:
        fd = out.fileno()
        return fd if stat.S_ISFIFO(os.fstat(fd).st_mode) else None
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
        return None


def watch_closed(out: TextIO) -> asyncio.Future[None] | None:
    """A future resolved when the reader of ``out`` closes it; None when ``out`` is not a
    pipe (then a closed reader is found by the next write). Cancel it to stop watching."""
    fd = _pipe_fd(out)
    if fd is None:
        return None
    loop = asyncio.get_running_loop()
    closed: asyncio.Future[None] = loop.create_future()

    def check() -> None:
        # Called when the selector reports the fd: POLLERR for a reader gone. Anything else
        # (a pipe opened read-write, readable by us) stops the watch rather than spin.
        loop.remove_reader(fd)
        if reader_gone(fd) and not closed.done():
            closed.set_result(None)

    try:
        loop.add_reader(fd, check)
    except (OSError, ValueError, NotImplementedError):
        return None

    def stop(_: asyncio.Future[None]) -> None:
        with contextlib.suppress(Exception):  # the loop may be closing
            loop.remove_reader(fd)

    closed.add_done_callback(stop)
    return closed


def silence_stdout() -> None:
    """Point fd 1 at /dev/null: what is still buffered for stdout goes nowhere, quietly."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
