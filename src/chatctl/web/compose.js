// chatctl web client: the message box: its keys (Enter, Tab completion of user names, Up),
// the length counter and the trailing newlines of a paste.

/** Characters as the server counts them (code points, not UTF-16 units). */
export function length(text) {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

/** A paste or a copied line keeps its trailing newline: it is not part of the message. */
export function trimTrailingLines(text) {
  return text.replace(/\s+$/, (tail) => (/[\r\n]/.test(tail) ? "" : tail));
}

/** The counter shown from 90 % of the limit on: "7,412 / 8,000" ("over" past the limit). */
export function counter(node, text, limit) {
  const n = length(text);
  node.hidden = n < limit * 0.9;
  node.textContent = n.toLocaleString("en") + " / " + limit.toLocaleString("en");
  node.classList.toggle("over", n > limit);
  return n;
}

/**
 * Tab completion: the word before the caret completed to the one name in ``names`` it
 * starts (or to the names' common start), ": " after it at the start of the line.
 * Returns ``{value, caret}``, or null when nothing matches.
 */
export function complete(value, caret, names) {
  const before = value.slice(0, caret);
  const word = before.match(/@?[\p{L}\p{N}._-]*$/u)[0];
  const stem = word.replace(/^@/, "");
  if (!stem) return null;
  const found = [...new Set(names)].filter((n) => n.toLowerCase().startsWith(stem.toLowerCase())).sort();
  if (!found.length) return null;
  let done = found[0];
  for (const n of found.slice(1)) {
    while (!n.toLowerCase().startsWith(done.toLowerCase())) done = done.slice(0, -1);
  }
  if (done.length < stem.length) return null;
  const start = caret - word.length;
  const prefix = word.startsWith("@") ? "@" : "";
  const whole = found.length === 1;
  const tail = whole ? (start === 0 && !prefix ? ": " : " ") : "";
  const text = prefix + (whole ? found[0] : stem + done.slice(stem.length)) + tail;
  return { value: value.slice(0, start) + text + value.slice(caret), caret: start + text.length };
}

/**
 * Enter sends (Shift+Enter: a new line), Tab completes a name of ``names()``, Up puts
 * ``recall()`` into an empty box; ``changed()`` after the box was changed here.
 */
export function bindKeys(input, { submit, names, recall, changed }) {
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submit();
    } else if (ev.key === "Tab" && !ev.shiftKey && input.selectionStart === input.selectionEnd) {
      const done = complete(input.value, input.selectionStart, names());
      if (done) {
        ev.preventDefault();
        input.value = done.value;
        input.setSelectionRange(done.caret, done.caret);
      }
    } else if (ev.key === "ArrowUp" && !input.value && recall()) {
      ev.preventDefault();
      input.value = recall();
      changed();
    }
  });
}
