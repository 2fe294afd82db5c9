// chatctl web client: the rooms the user opened, one WebSocket each (room.js), to the server
// that served this page (docs/protocol.md). No framework, no build step. Every piece of text
// from the network goes through textContent (never parsed as HTML): markup is shown, never run.
import { command } from "./commands.js";
import { bindKeys, counter, length, trimTrailingLines } from "./compose.js";
import { label, onDm, validName } from "./direct.js";
import { notifyMessage, setupNotifications } from "./notify.js";
import { loadOlder, loadOlderIfShort, onHistory } from "./older.js";
import { Room } from "./room.js";
import { el } from "./render.js";
import { $, state } from "./state.js";
import { ExpiryWarning, tokenExp } from "./token.js";
import {
  atBottom,
  notice,
  onPresence,
  onPresenceBatch,
  onWho,
  placeView,
  renderMessage,
  renderRooms,
  renderUsers,
  scrollDown,
  showStatus,
  updateTitle,
} from "./view.js";

const store = window.sessionStorage;
const MAX_FRAME_BYTES = 60000; // under the server's default --max-frame (65,536)
const KEY = {
  token: "chatctl.token",
  room: "chatctl.room",
  rooms: "chatctl.rooms", // and chatctl.outbox.ROOM (outbox.js), chatctl.seen.ROOM (room.js)
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

// ------------------------------------------------------------------ connections

function refused(room, status, text) {
  if (status === 401) {
    signOut(text);
    return;
  }
  if (!room.joined && state.room !== room) {
    // a failed /join: stay where we were, and forget the room (also across reloads)
    closeRoom(room);
    notice(state.room, "cannot join " + label(room.name) + ": " + text, "error");
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
  message: onLiveMessage,
  ack: onAck,
  error: onError,
  presence: onPresence,
  presence_batch: onPresenceBatch,
  who: onWho,
  history: onHistory,
  limits: ignore, // the page sends one message at a time: nothing to pace
  refreshed: onRefreshed,
  pong: ignore, // the page sends no ping
  dm: onDm, // direct.js
});

function onFrame(room, f) {
  if (typeof f.type === "string" && Object.hasOwn(FRAME_HANDLERS, f.type)) {
    FRAME_HANDLERS[f.type](room, f);
  }
}

function ignore() {}

function onWelcome(room, f) {
  state.me = f.user;
  room.welcomed = true;
  room.attempt = 0;
  const resumed = "since" in f;
  if (room.epoch !== null && f.epoch !== room.epoch) room.lastId = 0; // ids started again
  if (resumed && !f.recovered) {
    // more: the server keeps them, but sent only the newest that fit (docs/protocol.md)
    notice(room, f.more
      ? "More messages came while you were disconnected than the server resends at once: the newest are shown (the others: chatctl history " + room.name + ")."
      : "Some messages were missed while you were disconnected: the server no longer has them.", "missed");
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
    if (room.lastId === 0) room.log.append(el("li", "empty", "No messages in " + label(room.name) + " yet: say hello!"));
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

/** A message frame (not a welcome's history): shown, and perhaps a desktop notification. */
function onLiveMessage(room, f) {
  if (onMessage(room, f)) notifyMessage(room, f);
}

function onMessage(room, f) {
  if (typeof f.id !== "number" || f.id <= room.lastId) return false; // already shown
  room.lastId = f.id;
  const li = renderMessage(room, f);
  if (f.client_id && f.user === state.me) room.outbox.echoed(f.client_id, li);
  return true;
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

function onRefreshed(room, f) {
  if (typeof f.exp === "number") expiry.watch(f.exp);
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

function submit() {
  const input = $("input");
  const text = trimTrailingLines(input.value);
  if (!text.trim() || !state.room) return;
  note("");
  const act = { post, note, notice, open: openRoom, part: partRoom };
  const done = text.startsWith("/") ? command(text.trimEnd(), act) : post(text, "text");
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
  if (!validName(name)) {
    note("invalid " + (name[0] === "@" ? "user name" : "room name: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit"));
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
  $("title").textContent = label(room.name);
  $("composer").hidden = false;
  $("leave").hidden = false;
  $("input").placeholder = "Message " + label(room.name);
  placeView(room, seenId);
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

bindKeys($("input"), {
  submit,
  names: () => (state.room ? [...state.room.users, ...state.room.authors()] : []),
  recall: () => state.lastSent,
  changed: updateCounter,
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

state.open = openRoom;
setupNotifications();
for (const name of JSON.parse(store.getItem(KEY.rooms) || "[]")) {
  if (validName(name)) addRoom(name);
}
start();
