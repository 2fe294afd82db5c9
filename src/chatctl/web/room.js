// chatctl web client: one open room. Every open room keeps its own WebSocket (so the rooms
// not shown still count their unread messages and mentions), its place in the stream
// (epoch, last id, the oldest id shown), its scroll position and what the user has seen.
import { Outbox } from "./outbox.js";
import { el } from "./render.js";

const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000, 15000];
const store = window.sessionStorage;

export class Room {
  /**
   * ``hooks``: ``token()`` the token to connect with; ``frame(room, f)`` each server frame;
   * ``status(room)`` the connection state changed; ``refused(room, status, text)`` the
   * server refused the handshake (401, 403…); ``closed(room, ev)`` a welcomed connection
   * ended (the room reconnects by itself unless ``refused`` was called).
   */
  constructor(name, hooks) {
    this.name = name;
    this.hooks = hooks;
    this.lastId = 0;
    this.epoch = null;
    this.firstId = null; // the oldest message id shown (history loads older ones)
    this.more = false; // the server keeps older messages than firstId
    this.loading = false; // a history request is on its way
    this.users = [];
    this.unlisted = 0; // users the welcome counted but did not list (/who lists them)
    this.lastDay = null;
    this.unread = 0; // messages of others since the room was last shown
    this.mentions = 0;
    this.seen = loadSeen(name); // {epoch, id}: the newest message the user was shown
    this.scroll = null; // scrollTop when the room was left, null: at the bottom
    this.joined = false; // welcomed at least once: the server lets this token in
    this.gone = false; // closed for good (a refused join, signing out)
    this.box = el("div", "room");
    this.log = el("ol", "log");
    this.log.setAttribute("role", "log"); // read out by screen readers as it grows
    this.outbox = new Outbox(name);
    this.box.append(this.log, this.outbox.list);
    this.ws = null;
    this.welcomed = false;
    this.attempt = 0;
    this.timer = null;
    this.tick = null;
    this.status = { kind: "idle", text: "not connected" };
  }

  socketUrl(scheme) {
    const url = new URL("ws/" + encodeURIComponent(this.name), location.href);
    url.protocol = scheme;
    url.hash = "";
    const q = new URLSearchParams({ token: this.hooks.token() });
    if (this.lastId > 0 && this.epoch) {
      q.set("since", String(this.lastId));
      q.set("epoch", this.epoch);
    } else {
      q.set("history", "100");
    }
    url.search = q.toString();
    return url.toString();
  }

  setStatus(kind, text) {
    this.status = { kind, text };
    this.hooks.status(this);
  }

  connect() {
    this.stopTimers();
    if (!this.hooks.token()) return;
    this.drop();
    this.welcomed = false;
    if (this.attempt) this.setStatus("reconnecting", "reconnecting\u2026");
    else this.setStatus("connecting", "connecting\u2026");
    const ws = new WebSocket(this.socketUrl(location.protocol === "https:" ? "wss:" : "ws:"));
    this.ws = ws;
    ws.addEventListener("message", (ev) => {
      if (this.ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (frame && typeof frame === "object") this.hooks.frame(this, frame);
    });
    ws.addEventListener("close", (ev) => {
      if (this.ws !== ws) return; // replaced or closed on purpose
      this.ws = null;
      this.onClose(ev, this.welcomed);
    });
  }

  /** Close the connection on purpose (sign out, leaving the room): no reconnect. */
  drop() {
    this.stopTimers();
    if (this.ws) {
      const old = this.ws;
      this.ws = null;
      old.close(1000);
    }
    this.welcomed = false;
  }

  stopTimers() {
    clearTimeout(this.timer);
    clearInterval(this.tick);
    this.timer = null;
    this.tick = null;
  }

  send(frame) {
    const ws = this.ws;
    if (!ws || !this.welcomed || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  async onClose(ev, wasWelcomed) {
    if (ev.code === 1008) {
      this.hooks.refused(this, 1008, "the server closed the connection: " + (ev.reason || "policy violation"));
      return;
    }
    if (ev.code === 4003 || ev.code === 4004) {
      // kicked or banned by a moderator: the reason says who and why; no reconnect
      const verb = ev.code === 4003 ? "kicked" : "banned";
      const why = ev.reason || "";
      this.hooks.refused(this, ev.code, why.startsWith(verb) ? why : verb + (why ? ": " + why : ""));
      return;
    }
    if (ev.code === 1009) {
      // The last frame sent was over the server's --max-frame: re-sending it would loop.
      this.outbox.refuseLastSent("too large for this server");
    }
    if (!wasWelcomed) {
      // Browsers hide why a WebSocket handshake failed; ask the same URL over plain HTTP,
      // which answers the refusal (401, 403, 400…) or 426 when the handshake would pass.
      const refusal = await this.probe();
      if (this.ws || this.timer || this.gone) return;
      if (refusal) {
        this.hooks.refused(this, refusal.status, refusal.text);
        return;
      }
    }
    this.scheduleReconnect((ev.code === 1001 || ev.code === 1012) && wasWelcomed);
  }

  async probe() {
    try {
      const res = await fetch(this.socketUrl(location.protocol), {
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

  /** Reconnect after a backoff; the status counts the seconds down. */
  scheduleReconnect(quick) {
    if (quick) this.attempt = 0;
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const delay = Math.round(base * (0.5 + Math.random() / 2));
    this.attempt += 1;
    this.outbox.connectionLost();
    const at = Date.now() + delay;
    const show = () => {
      const left = Math.max(1, Math.ceil((at - Date.now()) / 1000));
      this.setStatus("reconnecting", "reconnecting in " + left + " s\u2026");
    };
    this.stopTimers();
    show();
    this.tick = setInterval(show, 250);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** The user was shown every message up to the newest: remember it (also across reloads). */
  markSeen() {
    this.unread = 0;
    this.mentions = 0;
    if (!this.epoch) return;
    this.seen = { epoch: this.epoch, id: this.lastId };
    store.setItem("chatctl.seen." + this.name, JSON.stringify(this.seen));
  }

  /** The users who wrote the messages shown (for completion: some may have left). */
  authors() {
    return [...this.log.querySelectorAll(".msg")].map((m) => m.dataset.user);
  }

  forget() {
    this.gone = true;
    this.drop();
    this.outbox.clear();
    store.removeItem("chatctl.seen." + this.name);
  }
}

function loadSeen(name) {
  try {
    const seen = JSON.parse(store.getItem("chatctl.seen." + name) || "null");
    if (seen && typeof seen.epoch === "string" && typeof seen.id === "number") return seen;
  } catch {
    // unreadable: nothing seen yet
  }
  return null;
}
