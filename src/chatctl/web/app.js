// chatctl web client: the rooms the user opened, one WebSocket each (room.js), to the server
// that served this page (docs/protocol.md). No framework, no build step. Every piece of text
// from the network goes through textContent (never parsed as HTML): markup is shown, never run.
import { complete, counter, length, trimTrailingLines } from "./compose.js";
import { Room } from "./room.js";
import { colorClass, dayNode, el, eventNode, mentions, messageNode, randomId } from "./render.js";
import { ExpiryWarning, tokenExp } from "./token.js";

const $ = (id) => document.getElementById(id);
const store = window.sessionStorage;
const ROOM_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAX_FRAME_BYTES = 60000; // under the server's default --max-frame (65,536)
const HISTORY_PAGE = 50; // older messages asked for at a time when scrolled to the top
const KEY = {
  token: "chatctl.token",
  room: "chatctl.room",
  rooms: "chatctl.rooms", // and chatctl.outbox.ROOM (outbox.js), chatctl.seen.ROOM (room.js)
};

const state = {
  token: null,
  me: null,
  rooms: new Map(),
  room: null, // the Room shown
  seq: 0,
  session: randomId(),
  maxChars: 8000, // the server's --max-message default; a refusal names the actual one
  lastSent: "", // what Up recalls in an empty box
};
const expiry = new ExpiryWarning($("renew"), $("renew-text"));

const hooks = {
  token: () => state.token,
  frame: onFrame,
  status: (room) => {
    if (room === state.room) showStatus();
    renderRooms();
  },
  refused,
};

// ------------------------------------------------------------------ rendering

function atBottom() {
  const c = $("chat");
  return c.scrollHeight - c.scrollTop - c.clientHeight < 40;
}

function scrollDown(stick) {
  if (stick) $("chat").scrollTop = $("chat").scrollHeight;
}

function shown(room) {
  return room === state.room && !document.hidden;
}

function line(room, node) {
  const stick = room === state.room && atBottom();
  room.log.append(node);
  scrollDown(stick);
}

function notice(room, text, cls = "") {
  line(room, el("li", ("notice " + cls).trim(), text));
}

function dayLine(room, date) {
  const day = date.toDateString();
  if (room.lastDay === day) return;
  room.lastDay = day;
  room.log.append(dayNode(date));
}

function renderMessage(room, f) {
  const date = new Date(f.ts * 1000);
  room.log.querySelector(".empty")?.remove();
  dayLine(room, date);
  const li = messageNode(f.user, f.message, f.kind, date);
  li.dataset.id = String(f.id);
  const mine = f.user === state.me;
  const mention = !mine && mentions(f.message, state.me);
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

function renderUsers() {
  const room = state.room;
  const list = $("users");
  list.replaceChildren();
  if (!room) return;
  for (const u of room.users) {
    const li = el("li", colorClass(u), u);
    if (u === state.me) li.classList.add("me");
    list.append(li);
  }
  const count = room.users.length + (room.unlisted || 0);
  $("count").textContent = count ? "(" + count + ")" : "";
}

function renderRooms() {
  const list = $("rooms");
  list.replaceChildren();
  for (const room of state.rooms.values()) {
    const li = el("li", room === state.room ? "current" : "");
    li.dataset.room = room.name;
    li.dataset.state = room.status.kind;
    const b = el("button");
    b.type = "button";
    b.append(el("span", "name", "#" + room.name));
    b.addEventListener("click", () => openRoom(room.name));
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
function updateTitle() {
  let total = 0;
  for (const room of state.rooms.values()) total += room.mentions;
  const base = state.room ? "#" + state.room.name + " \u2014 chatctl" : "chatctl";
  document.title = (total ? "(" + total + ") " : "") + base;
}

function showStatus() {
  const room = state.room;
  const { kind, text } = room ? room.status : { kind: "idle", text: "not connected" };
  const s = $("status");
  s.dataset.state = kind;
  s.textContent = text;
  $("retry").hidden = kind !== "reconnecting";
}

// ------------------------------------------------------------------ connections

function refused(room, status, text) {
  if (status === 401) {
    signOut(text);
    return;
  }
  if (!room.joined && state.room !== room) {
    // a failed /join: stay where we were, and forget the room (also across reloads)
    closeRoom(room);
    notice(state.room, "cannot join #" + room.name + ": " + text, "error");
    return;
  }
  room.setStatus("failed", "disconnected");
  notice(room, text, "error");
  if (!room.joined) {
    // the room this page opened with is refused: not opened again by a reload
    const other = [...state.rooms.values()].find((r) => r.joined);
    if (other) store.setItem(KEY.room, other.name);
    else store.removeItem(KEY.room);
  }
}

function closeRoom(room) {
  room.forget();
  state.rooms.delete(room.name);
  saveRooms();
  renderRooms();
  updateTitle();
}

function saveRooms() {
  const names = [...state.rooms.values()].filter((r) => r.joined).map((r) => r.name);
  store.setItem(KEY.rooms, JSON.stringify(names));
}

// ------------------------------------------------------------------ frames

// One handler per server frame type (chatctl.protocol.SERVER_FRAMES; a test fails when one
// is missing). Frame types this page does not know are ignored.
const FRAME_HANDLERS = Object.freeze({
  welcome: onWelcome,
  message: onMessage,
  ack: onAck,
  error: onError,
  presence: onPresence,
  presence_batch: onPresenceBatch,
  who: onWho,
  history: onHistory,
  limits: ignore, // the page sends one message at a time: nothing to pace
  refreshed: onRefreshed,
  pong: ignore, // the page sends no ping
});

function onFrame(room, f) {
  if (typeof f.type === "string" && Object.hasOwn(FRAME_HANDLERS, f.type)) {
    FRAME_HANDLERS[f.type](room, f);
  }
}

function ignore() {}

function onPresenceBatch(room, f) {
  // several changes of one presence tick (docs/protocol.md)
  for (const user of f.leaves || []) onPresence(room, { event: "leave", user, ts: f.ts });
  for (const user of f.joins || []) onPresence(room, { event: "join", user, ts: f.ts });
}

function onWho(room, f) {
  room.users = f.users || [];
  room.unlisted = 0;
  if (room === state.room) renderUsers();
  notice(room, "here: " + room.users.join(", "));
}

function onWelcome(room, f) {
  state.me = f.user;
  room.welcomed = true;
  room.attempt = 0;
  const resumed = "since" in f;
  if (room.epoch !== null && f.epoch !== room.epoch) room.lastId = 0; // ids started again
  if (resumed && !f.recovered) {
    notice(room, "Some messages were missed while you were disconnected: the server no longer has them.", "missed");
  }
  room.epoch = f.epoch;
  if (!room.joined && (!room.seen || room.seen.epoch !== f.epoch)) {
    room.seen = { epoch: f.epoch, id: f.last_id || 0 }; // what came before is not unread
  }
  const marker = !room.joined && room.seen.id < (f.last_id || 0) ? room.seen.id : null;
  for (const m of f.history || []) onMessage(room, m);
  room.lastId = Math.max(room.lastId, f.last_id || 0);
  if (room.firstId === null) {
    room.firstId = room.lastId + 1;
    if (room.lastId === 0) room.log.append(el("li", "empty", "No messages in #" + room.name + " yet: say hello!"));
  }
  room.more = room.firstId > 1;
  room.users = f.users || [];
  // a big room's welcome lists the first users only: user_count says how many there are
  room.unlisted = Math.max(0, (f.user_count || 0) - room.users.length);
  const first = !room.joined;
  room.joined = true;
  saveRooms();
  room.setStatus("online", "connected as " + f.user);
  if (room.pendingShow || (first && room === state.room)) {
    room.pendingShow = false;
    showRoom(room, marker);
  } else if (room === state.room) {
    renderUsers();
  }
  room.outbox.connectionLost(); // what an earlier connection sent but saw no ack for: again
  flush(room);
  loadOlderIfShort(room);
}

function onMessage(room, f) {
  if (typeof f.id !== "number" || f.id <= room.lastId) return; // already shown
  room.lastId = f.id;
  const li = renderMessage(room, f);
  if (f.client_id && f.user === state.me) room.outbox.echoed(f.client_id, li);
}

function onAck(room, f) {
  room.outbox.acked(f.client_id, f.duplicate);
}

function onError(room, f) {
  const reason = f.reason || f.code;
  if (f.client_id && f.client_id.startsWith("h-")) {
    room.loading = false; // a server without history requests: nothing older to load
    room.more = false;
  } else if (!f.client_id || !room.outbox.has(f.client_id)) {
    notice(room, "server: " + reason, "error");
  } else if (f.code === "rate_limited" || f.code === "broker_unavailable") {
    const wait = Math.max(0.2, Number(f.retry_after) || 1);
    room.outbox.retry(f.client_id, reason, wait, () => flush(room));
  } else if (f.code === "message_too_long") {
    // back into the box (when it is empty), with the reason next to it: shorten and resend
    const limit = Number((reason.match(/limit is (\d+)/) || [])[1]);
    if (limit > 0) state.maxChars = limit;
    const text = room.outbox.take(f.client_id);
    if (room === state.room && !$("input").value && text !== null) $("input").value = text;
    else room.outbox.refuse(f.client_id, reason);
    if (room === state.room) note(reason);
    updateCounter();
  } else {
    room.outbox.refuse(f.client_id, reason);
  }
}

function onPresence(room, f) {
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

function onRefreshed(room, f) {
  if (typeof f.exp === "number") expiry.watch(f.exp);
}

// ------------------------------------------------------------------ history on scroll-up

function loadOlder(room) {
  if (!room.more || room.loading || !room.welcomed) return;
  room.loading = room.send({ type: "history", before: room.firstId, limit: HISTORY_PAGE, client_id: "h-" + room.firstId });
}

/** A pane not filled yet cannot be scrolled to its top: load until it is (or nothing is left). */
function loadOlderIfShort(room) {
  const c = $("chat");
  if (room === state.room && c.scrollHeight <= c.clientHeight) loadOlder(room);
}

function onHistory(room, f) {
  room.loading = false;
  if (f.epoch !== room.epoch) return;
  const older = (f.messages || []).filter((m) => typeof m.id === "number" && m.id < room.firstId);
  const nodes = [];
  let day = null;
  for (const m of older) {
    const date = new Date(m.ts * 1000);
    if (date.toDateString() !== day) nodes.push(dayNode(date));
    day = date.toDateString();
    const li = messageNode(m.user, m.message, m.kind, date);
    li.dataset.id = String(m.id);
    if (m.user !== state.me && mentions(m.message, state.me)) li.classList.add("mention");
    nodes.push(li);
  }
  room.more = Boolean(f.more) && older.length > 0;
  if (!older.length) return;
  room.firstId = older[0].id;
  // keep what the user looks at where it is: the pane grows above it
  const c = $("chat");
  const anchor = room.log.querySelector(".msg");
  const before = anchor ? anchor.getBoundingClientRect().top : 0;
  room.log.querySelector(".empty")?.remove();
  const top = room.log.firstElementChild;
  if (top && top.classList.contains("day") && top.dataset.day === day) top.remove();
  room.log.prepend(...nodes);
  if (room === state.room && anchor) c.scrollTop += anchor.getBoundingClientRect().top - before;
  loadOlderIfShort(room);
}

// ------------------------------------------------------------------ sending

function flush(room) {
  room.outbox.flush((frame) => room.send(frame), state.me);
}

function note(text) {
  $("note").textContent = text || "";
  $("note").hidden = !text;
}

function updateCounter() {
  return counter($("counter"), $("input").value, state.maxChars);
}

/** Queue ``text``; false (with the reason next to the box) when it cannot be sent. */
function post(text, kind) {
  const room = state.room;
  const chars = length(text);
  if (chars > state.maxChars) {
    note("That message is " + chars.toLocaleString("en") + " characters; the limit is " + state.maxChars.toLocaleString("en") + ".");
    return false;
  }
  const bytes = new TextEncoder().encode(JSON.stringify(text)).length;
  if (bytes > MAX_FRAME_BYTES) {
    note("That message is too long to send (" + bytes + " bytes).");
    return false;
  }
  state.seq += 1;
  room.outbox.add("w" + state.session + "-" + state.seq, text, kind, state.me);
  flush(room);
  scrollDown(true);
  return true;
}

const HELP = [
  "/me ACTION \u2013 send an action: * you ACTION",
  "/join ROOM \u2013 open another room (it stays open in the list)",
  "/part \u2013 leave this room",
  "/who \u2013 list the users in the room",
  "/clear \u2013 clear the messages shown",
  "//text \u2013 send text that starts with /",
  "Enter sends, Shift+Enter starts a new line, Tab completes a name, Up recalls your last message.",
];

/** Run a /command; false leaves the text in the box (it was not done). */
function command(line) {
  const room = state.room;
  if (line.startsWith("//")) return post(line.slice(1), "text");
  const [, name, arg = ""] = line.match(/^\/(\S*)\s*([\s\S]*)$/);
  switch (name.toLowerCase()) {
    case "me":
      if (!arg.trim()) {
        note("usage: /me ACTION (e.g. /me waves)");
        return false;
      }
      return post(arg.trim(), "action");
    case "join":
      return openRoom(arg.trim());
    case "part":
    case "leave":
      return partRoom(room);
    case "who":
    case "names":
      if (!room.send({ type: "who" })) notice(room, "not connected", "error");
      return true;
    case "clear":
      room.log.replaceChildren();
      room.lastDay = null;
      return true;
    case "help":
      for (const h of HELP) notice(room, h);
      return true;
    case "say":
      return arg ? post(arg, "text") : true;
    default:
      note("no command /" + name + " (/help lists them; //text sends text starting with /)");
      return false;
  }
}

function submit() {
  const input = $("input");
  const text = trimTrailingLines(input.value);
  if (!text.trim() || !state.room) return;
  note("");
  const done = text.startsWith("/") ? command(text.trimEnd()) : post(text, "text");
  if (done === false) return;
  state.lastSent = text;
  input.value = "";
  updateCounter();
}

// ------------------------------------------------------------------ rooms and sign-in

function addRoom(name) {
  const room = new Room(name, hooks);
  state.rooms.set(name, room);
  room.outbox.restore();
  return room;
}

/** Show ``name`` (opening it first if it is not open); false when the name is invalid. */
function openRoom(name) {
  if (!ROOM_RE.test(name)) {
    note("invalid room name: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit");
    return false;
  }
  closeMenu();
  let room = state.rooms.get(name);
  if (!room) {
    room = addRoom(name);
    renderRooms();
    room.connect();
    if (state.room) {
      // shown once the server let us in: a refusal leaves us where we are
      room.pendingShow = true;
      return true;
    }
  } else if (!room.ws && !room.timer) {
    room.attempt = 0;
    room.connect();
  }
  showRoom(room, null);
  return true;
}

/** Put ``room`` on screen, at its read marker (or where it was left, or at the bottom). */
function showRoom(room, markerId) {
  const c = $("chat");
  const leaving = state.room;
  if (leaving && leaving !== room) {
    leaving.scroll = atBottom() ? null : c.scrollTop;
    leaving.markSeen();
  }
  const seenId = leaving === room ? markerId : room.seen ? room.seen.id : markerId;
  state.room = room;
  store.setItem(KEY.room, room.name);
  c.replaceChildren(room.box);
  $("title").textContent = "#" + room.name;
  $("composer").hidden = false;
  $("leave").hidden = false;
  $("input").placeholder = "Message #" + room.name;
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
  if (!document.hidden) room.markSeen();
  showStatus();
  renderRooms();
  renderUsers();
  updateTitle();
  $("input").focus();
  loadOlderIfShort(room);
}

function partRoom(room) {
  closeRoom(room);
  const next = [...state.rooms.values()][0];
  if (next) return openRoom(next.name);
  state.room = null;
  store.removeItem(KEY.room);
  $("chat").replaceChildren(el("p", "", "No room open."));
  $("title").textContent = "chatctl";
  $("composer").hidden = true;
  showStatus();
  renderUsers();
  return true;
}

function signOut(reason) {
  store.removeItem(KEY.token);
  state.token = null;
  expiry.watch(null);
  for (const room of state.rooms.values()) {
    room.drop();
    room.setStatus("idle", "not connected");
  }
  showLogin(reason);
}

function showLogin(reason) {
  $("login").hidden = false;
  $("login-error").hidden = !reason;
  $("login-error").textContent = reason || "";
  $("login-room").value = store.getItem(KEY.room) || "general";
  $("login-token").focus();
}

/** A new token (a new link, the login form, the renewal box): every open room keeps going. */
function useToken(token) {
  const previous = state.token;
  state.token = token;
  store.setItem(KEY.token, token);
  expiry.watch(tokenExp(token));
  if (!previous) return;
  for (const room of state.rooms.values()) {
    if (room.welcomed) room.send({ type: "refresh", token });
    else if (!room.gone) room.connect();
  }
}

function readFragment() {
  if (!location.hash) return;
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  const room = params.get("room");
  if (token) useToken(token.trim());
  if (room) store.setItem(KEY.room, room);
  // The token leaves the address bar (and the tab's history) as soon as it is read.
  history.replaceState(null, "", location.pathname + location.search);
}

function start() {
  readFragment();
  if (!state.token && store.getItem(KEY.token)) useToken(store.getItem(KEY.token));
  if (!state.token) {
    showLogin("");
    return;
  }
  $("login").hidden = true;
  for (const room of state.rooms.values()) {
    if (!room.ws && !room.timer) room.connect();
  }
  openRoom(store.getItem(KEY.room) || "general");
}

function closeMenu() {
  $("side").classList.remove("open");
  $("menu").setAttribute("aria-expanded", "false");
}

// ------------------------------------------------------------------ wiring

$("input").addEventListener("keydown", (ev) => {
  const input = $("input");
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    submit();
  } else if (ev.key === "Tab" && !ev.shiftKey && state.room && input.selectionStart === input.selectionEnd) {
    const names = [...state.room.users, ...[...state.room.log.querySelectorAll(".msg")].map((m) => m.dataset.user)];
    const done = complete(input.value, input.selectionStart, names);
    if (done) {
      ev.preventDefault();
      input.value = done.value;
      input.setSelectionRange(done.caret, done.caret);
    }
  } else if (ev.key === "ArrowUp" && !input.value && state.lastSent) {
    ev.preventDefault();
    input.value = state.lastSent;
    updateCounter();
  }
});
$("input").addEventListener("input", () => updateCounter());
$("composer").addEventListener("submit", (ev) => {
  ev.preventDefault();
  submit();
  $("input").focus();
});
$("chat").addEventListener("scroll", () => {
  const room = state.room;
  if (room && $("chat").scrollTop < 60) loadOlder(room);
});
$("room-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (openRoom($("room-input").value.trim())) $("room-input").value = "";
});
$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const room = $("login-room").value.trim();
  store.setItem(KEY.room, room);
  state.token = null;
  useToken($("login-token").value.trim());
  $("login-token").value = "";
  start();
});
$("renew-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const token = $("renew-token").value.trim();
  if (!token) return;
  $("renew-token").value = "";
  useToken(token);
});
$("leave").addEventListener("click", () => {
  for (const room of state.rooms.values()) room.outbox.clear();
  signOut("");
});
$("retry").addEventListener("click", () => state.room && state.room.connect());
$("menu").addEventListener("click", () => {
  const open = $("side").classList.toggle("open");
  $("menu").setAttribute("aria-expanded", String(open));
});
window.addEventListener("hashchange", start);
window.addEventListener("online", () => {
  for (const room of state.rooms.values()) if (room.timer) room.connect();
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && state.room) {
    state.room.markSeen();
    renderRooms();
    updateTitle();
  }
});

for (const name of JSON.parse(store.getItem(KEY.rooms) || "[]")) {
  if (ROOM_RE.test(name)) addRoom(name);
}
start();
