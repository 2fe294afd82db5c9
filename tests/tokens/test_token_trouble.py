"""What ``chatctl join`` (script and terminal) says about token events, as plain calls."""

from __future__ import annotations

from chatctl.tokens.renewal import TokenExpired, TokenProblem, TokenRenewed, TokenTrouble


def test_a_routine_renewal_says_nothing() -> None:
    trouble = TokenTrouble()
    assert trouble.tell(TokenRenewed(2e9, "--token-file t")) is None
    assert not trouble.active


def test_trouble_is_told_each_time_and_its_end_once() -> None:
    trouble = TokenTrouble()
    problem = trouble.tell(TokenProblem("cannot renew the token: boom", 2e9))
    assert problem is not None and problem.error and problem.text.endswith("boom")
    assert problem.status.startswith("token not renewed, valid until ")
    assert trouble.tell(TokenProblem("again", 2e9)) is not None
    end = trouble.tell(TokenRenewed(2e9, "--token-file t"))
    assert end is not None and not end.error and end.status == ""
    assert end.text.startswith("token renewed from --token-file t, valid until ")
    assert trouble.tell(TokenRenewed(2e9, "--token-file t")) is None


def test_an_expired_token_is_told_only_when_a_new_one_can_come() -> None:
    trouble = TokenTrouble()
    notice = trouble.tell(TokenExpired("the token expired (4001)", "--token-file t", True))
    assert notice is not None and notice.error
    assert notice.text == "the token expired (4001); waiting for a new token from --token-file t"
    assert notice.status == "token expired: waiting for --token-file t"
    trouble = TokenTrouble()
    assert trouble.tell(TokenExpired("expired", "CHATCTL_TOKEN", False)) is None
    assert trouble.active  # a renewal after it is news
