"""What one request of the HTTP API is, and its answers: :class:`Request` (the head),
:class:`Reply` (a whole answer), :class:`ApiError` (an answer with the protocol's error)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


class ApiError(Exception):
    """An answer with an error: ``status``, the protocol's error ``code``, a one-line
    ``reason``; ``retry_after`` seconds for 429 and 503; ``allow`` for 405."""

    def __init__(
        self,
        status: int,
        code: str,
        reason: str,
        *,
        retry_after: float | None = None,
        allow: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason
        self.retry_after, self.allow = retry_after, allow

    def reply(self) -> Reply:
        body: dict[str, Any] = {"type": "error", "code": self.code, "reason": self.reason}
        headers: list[tuple[str, str]] = []
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
            headers.append(("Retry-After", str(max(1, round(self.retry_after + 0.49)))))
        if self.allow is not None:
            headers.append(("Allow", self.allow))
        return Reply.json(self.status, body, headers=headers)


@dataclass
class Reply:
    """A whole answer."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, obj: object, *, headers: Iterable[tuple[str, str]] = ()) -> Reply:
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        return cls(status, body, headers=list(headers))


@dataclass
class Request:
    """The head of one request."""

    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    #: header names in lower case, values decoded as Latin-1, in order
    headers: list[tuple[str, str]]
    http_version: str

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` (lower case), or None."""
        found = None
        for key, value in self.headers:
            if key == name:
                found = value
        return found

    def headers_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None
