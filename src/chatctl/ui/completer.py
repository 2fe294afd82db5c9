"""Tab completion for the input line: ``/commands``, their arguments, and user names.

User names come most recently active first (as in WeeChat and irssi); a name completed at the
start of the line gets ``": "`` appended, the IRC way of addressing someone. Tested with a bare
``Document``, no terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document


class ChatCompleter(Completer):
    def __init__(
        self,
        commands: Mapping[str, str],
        users: Callable[[], Sequence[str]],
        arguments: Mapping[str, Callable[[], Iterable[str]]] | None = None,
    ) -> None:
        """``commands`` maps ``/name`` to its one-line help; ``users()`` lists names, most
        recently active first; ``arguments[/name]()`` lists a command's argument values."""
        self.commands = commands
        self.users = users
        self.arguments = arguments or {}

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        before = document.text_before_cursor
        if before.startswith("/") and " " not in before:
            for name, help_text in self.commands.items():
                if name.startswith(before.lower()):
                    yield Completion(name + " ", -len(before), display=name, display_meta=help_text)
            return
        if before.startswith("/"):
            command, _, rest = before.partition(" ")
            values = self.arguments.get(command.lower())
            if values is not None and " " not in rest:
                bare = rest.removeprefix("#")  # /join #gen<Tab>, as on IRC
                for value in values():
                    if value.startswith((rest, bare)):
                        yield Completion(value, -len(rest))
                return
        word = document.get_word_before_cursor(WORD=True)
        prefix = word.removeprefix("@")
        at_start = before == word
        for user in self.users():
            if user.lower().startswith(prefix.lower()):
                text = ("@" if word.startswith("@") else "") + user
                if at_start and not word.startswith("@"):
                    text += ": "
                yield Completion(text, -len(word), display=user)
