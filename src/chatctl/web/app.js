// chatctl web client: one WebSocket to the server that served this page (docs/protocol.md).
// No framework, no build step. Every piece of text from the network goes through
// textContent (never parsed as HTML): markup in a message is shown, never run.
import { Outbox } from "./outbox.js";
import { colorClass, el, mentions, messageNode, randomId } from "./render.js";

const $ = (id) => document.getElementById(id);
const store = window.sessionStorage;
const ROOM_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAX_FRAME_BYTES = 60000; // under the server's default --max-frame (65,536)
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000, 15000];
const KEY = {
  token: "chatctl.token",
  room: "chatctl.room",
  rooms: "chatctl.rooms", // and chatctl.outbox.ROOM (outbox.js)
};

/** One room: its DOM, where it is in the stream, and what we sent that is not acked. */
class Room {
  constructor(name) {
    this.name = name;
    this.lastId = 0;
    this.epoch = null;
    this.users = [];
    this.unlisted = 0; // users the welcome counted but did not list (/who lists them)
    this.lastDay = null;
    this.box = el("div", "room");
    this.log = el("ol", "log");
    this.log.setAttribute("role", "log"); // read out by screen readers as it grows
    this.outbox = new Outbox(name);
    this.box.append(this.log, this.outbox.list);
  }
}

const state = {
  token: null,
  me: null,
  rooms: new Map(),
  room: null, // the open Room
  ws: null,
  welcomed: false,
  attempt: 0,
  timer: null,
  seq: 0,
  unread: 0,
  session: randomId(),
};

// ------------------------------------------------------------------ helpers

function atBottom() {
  const c = $("chat");
  return c.scrollHeight - c.scrollTop - c.clientHeight < 40;
}

function scrollDown(stick) {
  if (stick) $("chat").scrollTop = $("chat").scrollHeight;
}

// ------------------------------------------------------------------ rendering

function line(room, node) {
  const stick = atBottom();
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
  const li = el("li", "day", date.toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" }));
  room.log.append(li);
}

function renderMessage(room, f) {
  const date = new Date(f.ts * 1000);
  dayLine(room, date);
  const li = messageNode(f.user, f.message, f.kind, date);
  li.dataset.id = String(f.id);
  if (f.user !== state.me && mentions(f.message, state.me)) {
    li.classList.add("mention");
    if (document.hidden) state.unread += 1;
  } else if (document.hidden && f.user !== state.me) {
    state.unread += 1;
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
  for (const name of state.rooms.keys()) {
    const li = el("li", state.room && state.room.name === name ? "current" : "");
    const b = el("button", "", "#" + name);
    b.type = "button";
    b.addEventListener("click", () => openRoom(name));
    li.append(b);
    list.append(li);
  }
}

function updateTitle() {
  const base = state.room ? "#" + state.room.name + " \u2013 chatctl" : "chatctl";
  document.title = (state.unread ? "(" + state.unread + ") " : "") + base;
}

function setStatus(kind, text) {
  const s = $("status");
  s.dataset.state = kind;
  s.textContent = text;
  $("retry").hidden = kind !== "reconnecting";
}

// ------------------------------------------------------------------ connection

function socketUrl(room, scheme) {
  const url = new URL("ws/" + encodeURIComponent(room.name), location.href);
  url.protocol = scheme;
  url.hash = "";
  const q = new URLSearchParams({ token: state.token });
  if (room.lastId > 0 && room.epoch) {
    q.set("since", String(room.lastId));
    q.set("epoch", room.epoch);
  } else {
    q.set("history", "100");
  }
  url.search = q.toString();
  return url.toString();
}

function connect() {
  clearTimeout(state.timer);
  state.timer = null;
  const room = state.room;
  if (!room || !state.token) return;
  if (state.ws) {
    const old = state.ws;
    state.ws = null;
    old.close(1000);
  }
  state.welcomed = false;
  setStatus(state.attempt ? "reconnecting" : "connecting", state.attempt ? "reconnecting\u2026" : "connecting\u2026");
  const ws = new WebSocket(socketUrl(room, location.protocol === "https:" ? "wss:" : "ws:"));
  state.ws = ws;
  ws.addEventListener("message", (ev) => {
    if (state.ws !== ws) return;
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (frame && typeof frame === "object") onFrame(room, frame);
  });
  ws.addEventListener("close", (ev) => {
    if (state.ws !== ws) return; // replaced on purpose (room switch, sign out)
    state.ws = null;
    onClose(room, ev, state.welcomed);
  });
}

async function onClose(room, ev, wasWelcomed) {
  if (ev.code === 1008) {
    fail(room, "the server closed the connection: " + (ev.reason || "policy violation"));
    return;
  }
  if (ev.code === 1009) {
    // The last frame sent was over the server's --max-frame: re-sending it would loop.
    room.outbox.refuseLastSent("too large for this server");
  }
  if (!wasWelcomed) {
    // Browsers hide why a WebSocket handshake failed; ask the same URL over plain HTTP,
    // which answers the refusal (401, 403, 400…) or 426 when the handshake would pass.
    const refusal = await probe(room);
    if (state.room !== room || state.ws) return;
    if (refusal) {
      if (refusal.status === 401) {
        signOut(refusal.text);
      } else {
        fail(room, refusal.text);
      }
      return;
    }
  }
  const quick = ev.code === 1001 || ev.code === 1012;
  scheduleReconnect(quick && wasWelcomed);
}

async function probe(room) {
  try {
    const res = await fetch(socketUrl(room, location.protocol), {
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
    });
    if ([400, 401, 403, 404].includes(res.status)) {
      return { status: res.status, text: (await res.text()).trim() || res.statusText };
    }
  } catch {
    // the server is down: reconnect with backoff
  }
  return null;
}

function scheduleReconnect(quick) {
  if (quick) state.attempt = 0;
  const base = BACKOFF_MS[Math.min(state.attempt, BACKOFF_MS.length - 1)];
  const delay = Math.round(base * (0.5 + Math.random() / 2));
  state.attempt += 1;
  state.room.outbox.connectionLost();
  setStatus("reconnecting", "reconnecting in " + Math.max(1, Math.round(delay / 1000)) + " s\u2026");
  state.timer = setTimeout(connect, delay);
}

function fail(room, reason) {
  setStatus("failed", "disconnected");
  notice(room, reason, "error");
}

function send(frame) {
  const ws = state.ws;
  if (!ws || !state.welcomed || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(frame));
  return true;
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
  limits: ignore, // the page sends one message at a time: nothing to pace
  refreshed: ignore, // the page sends no refresh: it signs in again when the token expires
  pong: ignore, // the page sends no ping
  history: ignore, // the page does not ask for older messages yet
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
  renderUsers();
  notice(room, "here: " + room.users.join(", "));
}

function onWelcome(room, f) {
  state.me = f.user;
  state.welcomed = true;
  state.attempt = 0;
  const resumed = "since" in f;
  if (room.epoch !== null && f.epoch !== room.epoch) room.lastId = 0; // ids started again
  if (resumed && !f.recovered) {
    notice(room, "Some messages were missed while you were disconnected: the server no longer has them.", "missed");
  }
  room.epoch = f.epoch;
  for (const m of f.history || []) onMessage(room, m);
  room.lastId = Math.max(room.lastId, f.last_id || 0);
  room.users = f.users || [];
  // a big room's welcome lists the first users only: user_count says how many there are
  room.unlisted = Math.max(0, (f.user_count || 0) - room.users.length);
  renderUsers();
  setStatus("online", "connected as " + f.user);
  $("input").placeholder = "Message #" + room.name;
  room.outbox.connectionLost(); // what an earlier connection sent but saw no ack for: again
  flush(room);
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
  if (!f.client_id || !room.outbox.has(f.client_id)) {
    notice(room, "server: " + reason, "error");
  } else if (f.code === "rate_limited" || f.code === "broker_unavailable") {
    const wait = Math.max(0.2, Number(f.retry_after) || 1);
    room.outbox.retry(f.client_id, reason, wait, () => flush(room));
  } else {
    room.outbox.refuse(f.client_id, reason);
  }
}

function onPresence(room, f) {
  const users = new Set(room.users);
  if (typeof f.ts === "number") dayLine(room, new Date(f.ts * 1000));
  if (f.event === "join") {
    users.add(f.user);
    line(room, el("li", "event", "\u2192 " + f.user + " joined"));
  } else if (f.event === "leave") {
    if (!users.delete(f.user) && room.unlisted > 0) room.unlisted -= 1;
    line(room, el("li", "event", "\u2190 " + f.user + " left"));
  }
  room.users = [...users].sort();
  renderUsers();
}

// ------------------------------------------------------------------ sending

function flush(room) {
  if (room === state.room) room.outbox.flush(send, state.me);
}

function post(text, kind) {
  const room = state.room;
  const bytes = new TextEncoder().encode(JSON.stringify(text)).length;
  if (bytes > MAX_FRAME_BYTES) {
    notice(room, "That message is too long to send (" + bytes + " bytes).", "error");
    return;
  }
  state.seq += 1;
  room.outbox.add("w" + state.session + "-" + state.seq, text, kind, state.me);
  flush(room);
  scrollDown(true);
}

function addRoom(name) {
  const room = new Room(name);
  state.rooms.set(name, room);
  room.outbox.restore();
  return room;
}

const HELP = [
  "/me ACTION \u2013 send an action: * you ACTION",
  "/join ROOM \u2013 open another room",
  "/who \u2013 list the users in the room",
  "/clear \u2013 clear the messages shown",
  "//text \u2013 send text that starts with /",
  "Enter sends, Shift+Enter starts a new line.",
];

function command(line) {
  const room = state.room;
  if (line.startsWith("//")) return post(line.slice(1), "text");
  const [, name, arg = ""] = line.match(/^\/(\S*)\s*([\s\S]*)$/);
  switch (name.toLowerCase()) {
    case "me":
      if (!arg.trim()) return notice(room, "usage: /me ACTION (e.g. /me waves)", "error");
      return post(arg.trim(), "action");
    case "join":
      return openRoom(arg.trim());
    case "who":
    case "names":
      if (!send({ type: "who" })) notice(room, "not connected", "error");
      return undefined;
    case "clear":
      room.log.replaceChildren();
      room.lastDay = null;
      return undefined;
    case "help":
      for (const h of HELP) notice(room, h);
      return undefined;
    case "say":
      return arg ? post(arg, "text") : undefined;
    default:
      return notice(room, "no command /" + name + " (/help lists them; //text sends text starting with /)", "error");
  }
}

function submit() {
  const input = $("input");
  const text = input.value;
  if (!text.trim() || !state.room) return;
  input.value = "";
  if (text.startsWith("/")) command(text.trimEnd());
  else post(text, "text");
}

// ------------------------------------------------------------------ rooms and sign-in

function openRoom(name) {
  if (!ROOM_RE.test(name)) {
    if (state.room) notice(state.room, "invalid room name: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit", "error");
    return;
  }
  store.setItem(KEY.room, name);
  let room = state.rooms.get(name);
  if (!room) {
    room = addRoom(name);
    store.setItem(KEY.rooms, JSON.stringify([...state.rooms.keys()]));
  }
  closeMenu();
  if (state.room === room && state.ws) return;
  state.room = room;
  $("chat").replaceChildren(room.box);
  $("title").textContent = "#" + name;
  $("composer").hidden = false;
  $("leave").hidden = false;
  state.attempt = 0;
  updateTitle();
  renderRooms();
  renderUsers();
  connect();
  $("input").focus();
}

function signOut(reason) {
  store.removeItem(KEY.token);
  state.token = null;
  clearTimeout(state.timer);
  if (state.ws) {
    const ws = state.ws;
    state.ws = null;
    ws.close(1000);
  }
  setStatus("idle", "not connected");
  showLogin(reason);
}

function showLogin(reason) {
  $("login").hidden = false;
  $("login-error").hidden = !reason;
  $("login-error").textContent = reason || "";
  $("login-room").value = store.getItem(KEY.room) || "general";
  $("login-token").focus();
}

function readFragment() {
  if (!location.hash) return;
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  const room = params.get("room");
  if (token) store.setItem(KEY.token, token.trim());
  if (room) store.setItem(KEY.room, room);
  // The token leaves the address bar (and the tab's history) as soon as it is read.
  history.replaceState(null, "", location.pathname + location.search);
}

function start() {
  readFragment();
  const previous = state.token;
  state.token = store.getItem(KEY.token);
  if (previous && previous !== state.token) state.room = null; // reconnect with the new one
  if (!state.token) {
    showLogin("");
    return;
  }
  $("login").hidden = true;
  openRoom(store.getItem(KEY.room) || "general");
}

function closeMenu() {
  $("side").classList.remove("open");
  $("menu").setAttribute("aria-expanded", "false");
}

// ------------------------------------------------------------------ wiring

$("input").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    submit();
  }
});
$("composer").addEventListener("submit", (ev) => {
  ev.preventDefault();
  submit();
  $("input").focus();
});
$("room-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  openRoom($("room-input").value.trim());
  $("room-input").value = "";
});
$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  store.setItem(KEY.token, $("login-token").value.trim());
  store.setItem(KEY.room, $("login-room").value.trim());
  $("login-token").value = "";
  state.room = null; // connect with the new token
  start();
});
$("leave").addEventListener("click", () => {
  for (const room of state.rooms.values()) room.outbox.clear();
  signOut("");
});
$("retry").addEventListener("click", () => connect());
$("menu").addEventListener("click", () => {
  const open = $("side").classList.toggle("open");
  $("menu").setAttribute("aria-expanded", String(open));
});
window.addEventListener("hashchange", start);
window.addEventListener("online", () => {
  if (state.timer) connect();
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    state.unread = 0;
    updateTitle();
  }
});

for (const name of JSON.parse(store.getItem(KEY.rooms) || "[]")) {
  if (ROOM_RE.test(name)) addRoom(name);
}
start();
