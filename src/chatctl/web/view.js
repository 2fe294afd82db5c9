// chatctl web client: what the page shows of the rooms: their lines, the side panel's rooms
// (with unread and mention badges) and users, the tab's title and the connection status.
import { label, messageButton } from "./direct.js";
import { $, state } from "./state.js";
import { highlighted } from "./notify.js";
import { colorClass, dayNode, el, eventNode, markDeleted, messageNode } from "./render.js";

export function atBottom() {
  const c = $("chat");
  return c.scrollHeight - c.scrollTop - c.clientHeight < 40;
}

export function scrollDown(stick) {
  if (stick) $("chat").scrollTop = $("chat").scrollHeight;
}

export function shown(room) {
  return room === state.room && !document.hidden;
}

export function line(room, node) {
  const stick = room === state.room && atBottom();
  room.log.append(node);
  scrollDown(stick);
}

export function notice(room, text, cls = "") {
  line(room, el("li", ("notice " + cls).trim(), text));
}

export function dayLine(room, date) {
  const day = date.toDateString();
  if (room.lastDay === day) return;
  room.lastDay = day;
  room.log.append(dayNode(date));
}

export function renderMessage(room, f) {
  const date = new Date(f.ts * 1000);
  room.log.querySelector(".empty")?.remove();
  dayLine(room, date);
  const li = messageNode(f.user, f.message, f.kind, date, f.display, f.deleted === true);
  li.dataset.id = String(f.id);
  const mod = f.moderation;
  if (mod && mod.action === "delete") {
    const gone = room.log.querySelector('li[data-id="' + Number(mod.target_id) + '"]');
    if (gone && !gone.classList.contains("moderation")) markDeleted(gone);
  }
  const mine = f.user === state.me;
  const mention = !mine && highlighted(f.message); // your name or a highlight word
  if (mention) li.classList.add("mention");
  if (room.firstId === null) room.firstId = f.id;
  const unseen = !room.seen || room.seen.epoch !== room.epoch || f.id > room.seen.id;
  if (shown(room)) {
    room.markSeen();
  } else if (!mine && unseen) {
    room.unread += 1;
    if (mention) room.mentions += 1;
    renderRooms();
  }
  line(room, li);
  updateTitle();
  return li;
}

export function renderUsers() {
  const room = state.room;
  const list = $("users");
  list.replaceChildren();
  if (!room) return;
  for (const u of room.users) {
    const li = el("li", colorClass(u), u);
    if (u === state.me) li.classList.add("me");
    else if (room.name[0] !== "@") li.append(messageButton(u));
    list.append(li);
  }
  const count = room.users.length + (room.unlisted || 0);
  $("count").textContent = count ? "(" + count + ")" : "";
}

export function renderRooms() {
  const list = $("rooms");
  list.replaceChildren();
  for (const room of state.rooms.values()) {
    const li = el("li", room === state.room ? "current" : "");
    li.dataset.room = room.name;
    li.dataset.state = room.status.kind;
    const b = el("button");
    b.type = "button";
    b.append(el("span", "name", label(room.name)));
    b.addEventListener("click", () => state.open(room.name));
    if (room.unread) {
      const badge = el("span", "badge unread", String(room.unread));
      badge.title = room.unread + " unread";
      b.append(badge);
    }
    if (room.mentions) {
      const badge = el("span", "badge mentions", "@" + room.mentions);
      badge.title = room.mentions + (room.mentions === 1 ? " mention" : " mentions");
      b.append(badge);
    }
    li.append(b);
    list.append(li);
  }
}

/** "(2) #general — chatctl": the unread mentions of every open room. */
export function updateTitle() {
  let total = 0;
  for (const room of state.rooms.values()) total += room.mentions;
  const base = state.room ? label(state.room.name) + " \u2014 chatctl" : "chatctl";
  document.title = (total ? "(" + total + ") " : "") + base;
}

export function showStatus() {
  const room = state.room;
  const { kind, text } = room ? room.status : { kind: "idle", text: "not connected" };
  const s = $("status");
  s.dataset.state = kind;
  s.textContent = text;
  $("retry").hidden = kind !== "reconnecting";
}

/** Scroll the room just put on screen to its "new messages" line (above the first message
 * after ``seenId``), or where it was left, or to the bottom. */
export function placeView(room, seenId) {
  const c = $("chat");
  let mark = null;
  room.log.querySelector(".marker")?.remove();
  if (seenId !== null && room.seen && room.seen.epoch === room.epoch && room.lastId > seenId) {
    const first = [...room.log.querySelectorAll(".msg")].find((m) => Number(m.dataset.id) > seenId);
    if (first) {
      mark = el("li", "marker", "new messages");
      first.before(mark);
    }
  }
  if (mark) c.scrollTop = Math.max(0, mark.offsetTop - c.offsetTop - 8);
  else if (room.scroll === null) c.scrollTop = c.scrollHeight;
  else c.scrollTop = room.scroll;
}

// ------------------------------------------------------------------ presence frames

export function onPresenceBatch(room, f) {
  // several changes of one presence tick (docs/protocol.md)
  for (const user of f.leaves || []) onPresence(room, { event: "leave", user, ts: f.ts });
  for (const user of f.joins || []) onPresence(room, { event: "join", user, ts: f.ts });
}

export function onWho(room, f) {
  room.users = f.users || [];
  room.unlisted = 0;
  if (room === state.room) renderUsers();
  notice(room, "here: " + room.users.join(", "));
}

export function onPresence(room, f) {
  const users = new Set(room.users);
  const date = typeof f.ts === "number" ? new Date(f.ts * 1000) : new Date();
  dayLine(room, date);
  if (f.event === "join") {
    users.add(f.user);
    line(room, eventNode("\u2192 " + f.user + " joined", date));
  } else if (f.event === "leave") {
    if (!users.delete(f.user) && room.unlisted > 0) room.unlisted -= 1;
    line(room, eventNode("\u2190 " + f.user + " left", date));
  }
  room.users = [...users].sort();
  if (room === state.room) renderUsers();
}
