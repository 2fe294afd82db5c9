"""Exit statuses of every chatctl command, documented in ``--help``, README and man pages."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """What a chatctl process tells its caller when it exits.

    ===  ======================================================================
    0    success: everything asked for was done (``send``: every message acked)
    1    an unexpected error (a bug: run with ``--traceback`` and report it)
    2    usage error: a bad flag, argument, URL, room name or config file
    3    authentication or permission rejected by the server (HTTP 401/403)
    4    cannot connect: the server was unreachable until the timeout
    5    timeout: connected, but not every message was acked in time
    6    a message was not sent: the server refused it (e.g. too long), or a line of stdin
         could not be sent (over 64 KiB, not UTF-8)
    7    cannot write the output: stdout failed (disk full, I/O error)
    8    removed from the room by a moderator: kicked (close code 4003) or banned (4004, or a
         connection refused for a ban: HTTP 403 with the ban's reason)
    130  interrupted (Ctrl-C) before the work was done
    141  stdout was closed by its reader (``| head``): stopped, as a filter killed by
         SIGPIPE (128 + 13) would; ``send`` says on stderr how far it got
    ===  ======================================================================
    """

    OK = 0
    ERROR = 1
    USAGE = 2
    AUTH = 3
    CONNECT = 4
    TIMEOUT = 5
    REJECTED = 6
    OUTPUT_FAILED = 7
    REMOVED = 8
    INTERRUPTED = 130
    OUTPUT_CLOSED = 141
