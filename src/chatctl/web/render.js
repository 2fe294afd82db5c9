// chatctl web client: how messages look. Nodes are built with textContent only (never
// parsed as HTML), so markup in a message is shown and never run. No state here.

export function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function randomId() {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes); // works on plain http too, unlike randomUUID
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Escape sequences are removed whole, as chatctl's terminal clients do
// (src/chatctl/client/sanitize.py): CSI (ESC [ ... final byte: a coloured log line's
// ESC[31m), OSC/DCS/SOS/PM/APC strings up to BEL or ST, other ESC sequences. Other C0/C1
// controls (but newline and tab) become visible symbols (BEL shows as U+2407).
// Bidi controls stay (right-to-left writers need them) but each message is isolated
// (<bdi>, unicode-bidi: isolate), so one cannot reorder the rest of the line.
const SEQUENCE =
  /(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[ -/]*[0-~]?/g;
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
export function visible(text) {
  return text.replace(SEQUENCE, "").replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    if (code < 0x20) return String.fromCharCode(0x2400 + code);
    if (code === 0x7f) return "\u2421";
    return "\\u" + code.toString(16).padStart(4, "0");
  });
}

export function colorClass(user) {
  let h = 0;
  for (const ch of user) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return "c" + (h % 8);
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export function mentions(text, me) {
  if (!me) return false;
  return new RegExp("(?<![\\p{L}\\p{N}_-])" + escapeRe(me) + "(?![\\p{L}\\p{N}_-])", "iu").test(text);
}

// A webhook's display name shows with its user, never instead: "Grafana (via hooks)".
export function senderName(user, display) {
  return typeof display === "string" && display ? display.slice(0, 32) + " (via " + user + ")" : user;
}

export function messageNode(user, text, kind, date, display, deleted) {
  const li = el("li", "msg" + (kind === "action" || kind === "moderation" ? " " + kind : ""));
  li.dataset.user = user;
  const name = senderName(user, display);
  const time = el("time");
  if (date) {
    time.dateTime = date.toISOString();
    time.textContent = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    time.title = date.toLocaleString();
  }
  const who = el("bdi", "user " + colorClass(user), kind === "action" ? "* " + name : kind === "moderation" ? "-!-" : name);
  const body = el("bdi", "text");
  body.append(...linked(visible(text)));
  body.dir = "auto";
  li.append(time, who, body);
  if (deleted) markDeleted(li);
  return li;
}

/** A deleted message (a tombstone): its text is gone. */
export function markDeleted(li) {
  li.classList.add("deleted");
  li.querySelector(".text").textContent = "message deleted";
}

// http and https URLs become links; everything else (javascript:, data:…) stays text. The
// link's text is the URL as written, set with textContent; a trailing ) . , ; : ! ? ' " is
// taken as the sentence's, not the URL's (unless the URL opened that parenthesis).
const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
function linked(text) {
  const parts = [];
  let at = 0;
  for (const m of text.matchAll(URL_RE)) {
    let url = m[0];
    while (/[).,;:!?'"\]]$/.test(url)) {
      if (url.endsWith(")") && url.split("(").length > url.split(")").length - 1) break;
      url = url.slice(0, -1);
    }
    let href = null;
    try {
      const parsed = new URL(url);
      if (parsed.protocol === "http:" || parsed.protocol === "https:") href = parsed.href;
    } catch {
      // not a URL after all: text
    }
    if (!href) continue;
    if (m.index > at) parts.push(text.slice(at, m.index));
    const a = el("a", "", url);
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    parts.push(a);
    at = m.index + url.length;
  }
  if (at < text.length) parts.push(text.slice(at));
  return parts;
}

/** A join or leave line, with its time like a message's. */
export function eventNode(text, date) {
  const li = el("li", "event");
  const time = el("time");
  if (date) {
    time.dateTime = date.toISOString();
    time.textContent = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    time.title = date.toLocaleString();
  }
  li.append(time, el("span", "what", text));
  return li;
}

export function dayNode(date) {
  const text = date.toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
  const li = el("li", "day", text);
  li.dataset.day = date.toDateString();
  return li;
}
