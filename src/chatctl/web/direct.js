// Direct messages: rooms named "@USER" (docs/protocol.md).
import { el } from "./render.js";
import { state } from "./state.js";
import { line } from "./view.js";

const ROOM_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const USER_RE = /^[^\s\p{C}]{1,64}$/u;
export const validName = (n) => (n[0] === "@" ? USER_RE : ROOM_RE).test(n.replace(/^@/, ""));
export const label = (n) => (n[0] === "@" ? n : "#" + n);

const told = new Map(); // "@user" -> count

// a dm frame (every connection gets it): once per count, with a button
export function onDm(_room, f) {
  const name = "@" + f.user;
  const known = told.get(name);
  told.set(name, f.unread);
  if (!f.unread || known === f.unread || state.rooms.has(name) || !state.room) return;
  const li = el("li", "notice dm", `${f.unread} unread direct message${f.unread > 1 ? "s" : ""} from ${f.user} `);
  li.append(button(name, "open " + name));
  line(state.room, li);
}

// the user list's envelope
export const messageButton = (user) => button("@" + user);

function button(room, text) {
  const b = el("button", text ? "open" : "dm", text);
  b.type = "button";
  if (!text) b.title = "message " + room.slice(1);
  if (!text) b.setAttribute("aria-label", b.title);
  b.addEventListener("click", () => state.open(room));
  return b;
}
