"""What the server's close codes mean, said to users (``the server is restarting (1012)``),
and the two after which a client must not reconnect on its own: kicked (4003) and banned
(4004) by a moderator (:func:`removed`)."""

from __future__ import annotations

from websockets.exceptions import ConnectionClosed

from chatctl.client.sanitize import one_line
from chatctl.errors import Removed
from chatctl.protocol import CloseCode

#: the reason of a 1012 sent by a server that restarts (``server/app.py``); any other reason
#: of a 1012 says why the server made the client resume (a lost history, missed messages)
RESTARTING = "server restarting"

#: what the server's close codes mean, said to users
CLOSE_WORDS: dict[int, str] = {
    CloseCode.NORMAL: "the server closed the connection",
    CloseCode.GOING_AWAY: "the server is shutting down",
    CloseCode.POLICY_VIOLATION: "closed by the server for breaking its rules",
    CloseCode.MESSAGE_TOO_BIG: "closed by the server: a frame was too big",
    CloseCode.INTERNAL_ERROR: "the server failed",
    CloseCode.SERVICE_RESTART: "the server is restarting",
    CloseCode.TRY_AGAIN_LATER: "the server is overloaded",
    CloseCode.SLOW_CONSUMER: "closed by the server: this client read too slowly",
    CloseCode.TOKEN_EXPIRED: "the token expired",
    CloseCode.TOKEN_REVOKED: "the token was revoked",
    CloseCode.KICKED: "kicked by a moderator",
    CloseCode.BANNED: "banned by a moderator",
}
#: the close codes after which a client does not reconnect: a moderator removed the user
REMOVED_CODES = frozenset({CloseCode.KICKED, CloseCode.BANNED})


#: ordinary closes, whose words say it all (the server's reason only repeats them)
_ORDINARY = {
    CloseCode.NORMAL,
    CloseCode.GOING_AWAY,
    CloseCode.SERVICE_RESTART,
    CloseCode.TRY_AGAIN_LATER,
    CloseCode.TOKEN_EXPIRED,
}


def describe_close(code: int | None, reason: str = "") -> str:
    """A close in words: ``the server is restarting (1012)``, ``connection lost``; the
    server's own reason is added to the others (``... (1008: rate limit exceeded)``)."""
    if code is None or code == 1006:
        return "connection lost"
    said = one_line(reason)
    if code == CloseCode.SERVICE_RESTART and said and said != RESTARTING:
        # the room's history was lost or messages were missed: the reason says which
        return f"the server asked this client to reconnect ({code}: {said})"
    words = CLOSE_WORDS.get(code, "closed by the server")
    reason = "" if code in _ORDINARY else one_line(reason)
    return f"{words} ({code}{': ' + reason if reason else ''})"


def close_reason(exc: ConnectionClosed) -> str:
    rcvd = exc.rcvd
    if rcvd is None:
        return "connection lost"
    return describe_close(rcvd.code, rcvd.reason)


def removed(code: int | None, room: str, reason: str = "") -> Removed | None:
    """The :class:`~chatctl.errors.Removed` a close with ``code`` means (None: another
    close), saying it as ``kicked from ops by alice: spam`` whether the server's reason
    is ``kicked by alice: spam``, ``by alice: spam`` or only ``spam``."""
    if code not in REMOVED_CODES:
        return None
    verb = "kicked" if code == CloseCode.KICKED else "banned"
    said = one_line(reason).strip()
    rest = said
    if rest.lower().startswith(verb):
        rest = rest[len(verb) :].lstrip(" :")
        if rest.lower().startswith(f"from {room.lower()}"):
            rest = rest[len(room) + 5 :].lstrip(" :")
    if not rest:
        text = f"{verb} from {room}"
    elif rest.lower().startswith(("by ", "for ", "until ")):
        text = f"{verb} from {room} {rest}"
    else:
        text = f"{verb} from {room}: {rest}"
    return Removed(text, room=room, code=code, reason=said)
