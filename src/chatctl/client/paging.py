"""A resume whose welcome was cut to fit the server's bound on pending output (``more``):
page the rest back with ``history`` requests before anything is shown, so that the client
holds every message after ``since`` and the resume is whole (docs/protocol.md, "Resuming
without gaps or duplicates").

:func:`page_back` sends ``history`` requests on the fresh connection, newest page first,
until it holds the message after ``since``; the frames that arrive meanwhile (live messages,
acks, presence) are kept, in order, for the stream to read after the welcome.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets

from websockets.asyncio.client import ClientConnection

from chatctl.protocol import (
    MAX_HISTORY_PAGE,
    HistoryPage,
    HistoryRequest,
    Message,
    ProtocolError,
    Welcome,
    parse_server_frame,
    peek_type,
)

#: seconds to wait for one page before giving up (the resume then says what was missed)
PAGE_TIMEOUT = 10.0
#: pages asked for at most: MAX_HISTORY_PAGE messages each (a server keeps 1,000 by default)
MAX_PAGES = 100


def needs_paging(welcome: Welcome, epoch: str | None) -> bool:
    """True for a welcome that resumed in the epoch the client knew (or did not know one)
    and says the rest is still kept (``more``)."""
    return (
        welcome.more
        and welcome.recovered is False
        and welcome.since is not None
        and (epoch is None or epoch == welcome.epoch)
    )


async def page_back(ws: ClientConnection, welcome: Welcome) -> tuple[Welcome, list[str | bytes]]:
    """``welcome`` with the messages after its ``since`` paged in front of its history and
    ``recovered: true`` when every one of them came; as it was otherwise (a page that stops
    short, a timeout). Also returns the frames that arrived meanwhile, to be read next."""
    assert welcome.since is not None
    since = welcome.since
    held: list[Message] = list(welcome.history)
    early: list[str | bytes] = []
    before = held[0].id if held else welcome.last_id + 1
    for _ in range(MAX_PAGES):
        if before <= since + 1:
            return dataclasses.replace(welcome, history=held, recovered=True, more=False), early
        ask = HistoryRequest(before=before, limit=MAX_HISTORY_PAGE, client_id=_request_id())
        await ws.send(ask.frame())
        page = await _answer(ws, ask.client_id, early)
        if page is None or page.epoch != welcome.epoch:
            break
        older = [m for m in page.messages if since < m.id < before]
        if not older:
            break  # nothing older kept after all: the rest is missed
        held = older + held
        before = older[0].id
        if not page.more and before > since + 1:
            break
    return dataclasses.replace(welcome, history=held), early


async def _answer(
    ws: ClientConnection, client_id: str | None, early: list[str | bytes]
) -> HistoryPage | None:
    """The ``history`` answer to ``client_id``; other frames go to ``early``."""
    try:
        async with asyncio.timeout(PAGE_TIMEOUT):
            while True:
                data = await ws.recv()
                if peek_type(data) in (None, HistoryPage.TYPE):
                    try:
                        frame = parse_server_frame(data)
                    except ProtocolError:
                        frame = None
                    if isinstance(frame, HistoryPage) and frame.client_id == client_id:
                        return frame
                early.append(data)
    except TimeoutError:
        return None


def _request_id() -> str:
    return "resume-" + secrets.token_hex(4)
