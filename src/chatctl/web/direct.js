// chatctl web client: direct messages (docs/protocol.md, "Direct messages"). A conversation
// is a room named "@USER" (room.js connects to /ws/@USER), opened from the user list's
// "message" buttons, /msg or /query; the server's dm frames say who wrote while it is not open.
import { el } from "./render.js";
import { state } from "./state.js";
import { line } from "./view.js";

const ROOM_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
// the server's user-name rule, near enough (it decides): no space, control or format character
const USER_RE = /^[^\s\p{C}]{1,64}$/u;

export function isConversation(name) {
  return name.startsWith("@");
}

/** A room name or "@USER" the page may open. */
export function validName(name) {
  return isConversation(name) ? USER_RE.test(name.slice(1)) : ROOM_RE.test(name);
}

/** "#general", or "@bob" for a conversation. */
export function label(name) {
  return isConversation(name) ? name : "#" + name;
}

// the unread count last told per conversation: each open room's connection hears the same
const told = new Map();

/** A dm frame: someone wrote in a conversation that is not open here. Told once per count,
 * in the room shown, with a button that opens it. */
export function onDm(_room, f) {
  const name = typeof f.room === "string" ? f.room : "@" + f.user;
  const known = told.get(name);
  told.set(name, f.unread);
  if (!f.unread || known === f.unread || state.rooms.has(name) || !state.room) return;
  const li = el("li", "notice dm", f.unread + " unread direct message" + (f.unread === 1 ? "" : "s") + " from " + f.user + " ");
  li.dataset.from = f.user;
  const open = el("button", "open", "open " + name);
  open.type = "button";
  open.addEventListener("click", () => state.open(name));
  li.append(open);
  line(state.room, li);
}

/** The user list's button that opens the conversation with ``user`` (an envelope drawn by
 * the style sheet: the list item's text stays the user's name). */
export function messageButton(user) {
  const b = el("button", "dm");
  b.type = "button";
  b.title = "message " + user;
  b.setAttribute("aria-label", "message " + user);
  b.addEventListener("click", () => state.open("@" + user));
  return b;
}
