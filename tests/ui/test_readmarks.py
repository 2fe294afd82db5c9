"""The read marks kept across runs (``$XDG_STATE_HOME/chatctl/read``), without a terminal."""

from __future__ import annotations

from chatctl.ui.readmarks import Mark, load_marks, marks_file, save_marks


def test_marks_are_merged_per_room_and_survive_a_broken_file() -> None:
    assert load_marks() == {}
    save_marks({"general": Mark(12, "e1"), "ops": Mark(3, "e2")})
    save_marks({"general": Mark(15, "e1")})  # another client: ops is kept
    assert load_marks() == {"general": Mark(15, "e1"), "ops": Mark(3, "e2")}
    marks_file().write_text("{not json")
    assert load_marks() == {}
    marks_file().write_text('{"a": {"id": -1}, "b": {"id": "7"}, "c": {"id": 7}}')
    assert load_marks() == {"c": Mark(7, None)}
