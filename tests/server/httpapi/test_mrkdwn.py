"""Slack's text format as plain text (chatctl.server.httpapi.mrkdwn): what Slack's clients
show for each of its forms, and everything else left as it was."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatctl.server.httpapi.mrkdwn import plain_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # links: label (URL), a bare URL, a mailto: link's address
        ("<https://grafana.example/d/abc|host-1>", "host-1 (https://grafana.example/d/abc)"),
        ("see <https://ci.example/run/42>", "see https://ci.example/run/42"),
        ("<http://example.com/a?b=1&amp;c=2|q&amp;a>", "q&a (http://example.com/a?b=1&c=2)"),
        ("<ftp://files.example/x.tgz|x.tgz>", "x.tgz (ftp://files.example/x.tgz)"),
        ("<mailto:sre@example.com|mail the SREs>", "mail the SREs (sre@example.com)"),
        ("<mailto:sre@example.com>", "sre@example.com"),
        ("<mailto:sre@example.com|sre@example.com>", "sre@example.com"),
        ("<tel:+15551234|call>", "call (tel:+15551234)"),
        ("<https://x.example/|https://x.example/>", "https://x.example/"),
        ("<https://x.example/|x.example>", "https://x.example/"),  # Slack's auto-links
        ("<https://x.example|  >", "https://x.example"),  # a blank label is none
        ("<https://x.example|a|b>", "a|b (https://x.example)"),
        # special mentions, user groups, dates
        ("<!channel> deploy done", "@channel deploy done"),
        ("<!here> <!everyone>", "@here @everyone"),
        ("<!here|here>", "@here"),
        ("<!subteam^S0614TZR7|@oncall> please look", "@oncall please look"),
        ("<!subteam^S0614TZR7>", "@S0614TZR7"),
        ("<!date^1392734382^{date} at {time}|Feb 18, 2014 at 6:39 AM>", "Feb 18, 2014 at 6:39 AM"),
        # users and channels
        ("<@U024BE7LH> ok?", "@U024BE7LH ok?"),
        ("<@U024BE7LH|bob>", "@bob"),
        ("<@U024BE7LH|@bob>", "@bob"),
        ("<#C0123>", "#C0123"),
        ("<#C0123|ops>", "#ops"),
        # the three entities, &amp; decoded last; no other entity
        ("a &lt;b&gt; &amp; c", "a <b> & c"),
        ("&amp;lt;", "&lt;"),
        ("&amp;amp;", "&amp;"),
        ("&lt;https://x.example|x&gt;", "<https://x.example|x>"),  # escaped: not a link
        ("&nbsp;&quot;&#39;&AMP;", "&nbsp;&quot;&#39;&AMP;"),
        # not Slack's forms: as they were
        ("p99 < 500ms", "p99 < 500ms"),
        ("a<b && b>c", "a<b && b>c"),
        ("<b>bold</b>", "<b>bold</b>"),
        ("std::vector<int:x>", "std::vector<int:x>"),
        ("Map<K:V>", "Map<K:V>"),
        ("<C:\\temp>", "<C:\\temp>"),
        ("<https://x.example/a b|label>", "<https://x.example/a b|label>"),
        ("<https://x.example|<b>>", "<https://x.example|<b>>"),
        ("<https://x.example|\nlabel>", "<https://x.example|\nlabel>"),
        ("<>", "<>"),
        ("<|>", "<|>"),
        ("<!>", "<!>"),
        ("<!|label>", "<!|label>"),
        ("<!date^1392734382^{date}>", "<!date^1392734382^{date}>"),  # no fallback
        ("<!date^1392734382^{date}| >", "<!date^1392734382^{date}| >"),
        ("<@>", "<@>"),
        ("<@bob smith>", "<@bob smith>"),
        ("<#>", "<#>"),
        ("<https://x.example", "<https://x.example"),
        ("https://x.example|x>", "https://x.example|x>"),
        ("", ""),
    ],
)
def test_plain_text(text: str, expected: str) -> None:
    assert plain_text(text) == expected


def test_every_form_in_one_line() -> None:
    text = (
        "<!channel> <https://grafana.example/d/abc|host-1> &amp; "
        "<https://ci.example/run/42>, ask <@U024BE7LH> in <#C0123|ops> &lt;3"
    )
    assert plain_text(text) == (
        "@channel host-1 (https://grafana.example/d/abc) & "
        "https://ci.example/run/42, ask @U024BE7LH in #ops <3"
    )


#: Slack's markup characters, so that the drawn texts are mostly near-misses of its forms
MARKUP = st.text(alphabet="<>|!@#^&;:/ ltgampxhs\n", max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(MARKUP, st.text(max_size=40)))
def test_it_never_raises_nor_lengthens(text: str) -> None:
    """Whatever a tool sends, the conversion returns text no longer than it was sent, so the
    body's size limit still bounds the message: a labelled link keeps its length, every
    other form shortens."""
    assert len(plain_text(text)) <= len(text)


@given(st.text(alphabet=st.characters(exclude_characters="<&"), max_size=40))
def test_text_without_brackets_or_entities_is_unchanged(text: str) -> None:
    assert plain_text(text) == text
