// chatctl web client: the messages of one room that the server has not acknowledged yet.
// Shown as pending; sent oldest first, and again after a reconnect or a refusal with
// retry_after, always with their client_id, so the server stores each one once; kept in the
// tab's session storage, so a reload does not lose them.
import { el, messageNode } from "./render.js";

const store = window.sessionStorage;

export class Outbox {
  constructor(room) {
    this.key = "chatctl.outbox." + room;
    this.list = el("ol", "outbox"); // where pending lines wait, below the room's log
    this.items = new Map(); // client_id -> {text, kind, user, el, sent, acked, echoed, failed}
    this.hold = null; // a timer while the server asked to wait (rate_limited): nothing is sent
    this.lastSent = null; // client_id of the last message frame sent
  }

  has(id) {
    return this.items.has(id);
  }

  add(id, text, kind, user) {
    const li = messageNode(user || "you", text, kind, null);
    li.classList.add("pending");
    this.list.append(li);
    const p = { text, kind, user, el: li, sent: false, acked: false, echoed: false, failed: false };
    this.items.set(id, p);
    setState(p, this.hold ? "waiting: rate limited" : "waiting for the connection");
    this.save();
  }

  /** Send what is not on its way, oldest first; ``send(frame)`` is false while offline. */
  flush(send, me) {
    if (this.hold) return;
    for (const [id, p] of this.items) {
      if (p.sent || p.acked || p.failed) continue;
      if (p.user && me && p.user !== me) {
        // written before signing in as someone else: never posted in another's name
        this.refuse(id, "written as " + p.user + ", not sent as " + me);
        continue;
      }
      if (!send({ type: "message", message: p.text, kind: p.kind, client_id: id })) return;
      p.sent = true;
      this.lastSent = id;
      setState(p, "sending\u2026");
    }
  }

  /** The connection dropped: what is not acknowledged goes again on the next one. */
  connectionLost() {
    clearTimeout(this.hold);
    this.hold = null;
    for (const p of this.items.values()) {
      p.sent = false;
      if (!p.acked && !p.failed) setState(p, "waiting for the connection");
    }
  }

  /** The server's copy of message ``id`` arrived as line ``li``: it replaces the pending one. */
  echoed(id, li) {
    const p = this.items.get(id);
    if (!p) return;
    p.el.remove();
    p.el = li;
    p.echoed = true;
    if (p.acked) {
      this.forget(id);
    } else {
      li.classList.add("pending");
      setState(p, "sending\u2026");
    }
  }

  acked(id, duplicate) {
    const p = this.items.get(id);
    if (!p) return;
    p.acked = true;
    p.el.classList.remove("pending");
    p.el.querySelector(".state")?.remove();
    if (p.echoed || duplicate) this.forget(id);
  }

  /** Not stored: the whole outbox waits ``wait`` seconds (keeping the order), then ``then()``. */
  retry(id, reason, wait, then) {
    const p = this.items.get(id);
    if (!p) return;
    p.sent = false;
    setState(p, reason + " \u2013 retrying in " + Math.ceil(wait) + " s");
    if (!this.hold) {
      this.hold = setTimeout(() => {
        this.hold = null;
        then();
      }, wait * 1000);
    }
  }

  /** The server will not take this message: say why next to it, and never send it again. */
  refuse(id, reason) {
    const p = this.items.get(id);
    if (!p || p.acked) return;
    p.failed = true;
    this.save();
    setState(p, "not sent: " + reason, true);
    const dismiss = el("button", "dismiss", "\u00d7");
    dismiss.type = "button";
    dismiss.title = "Dismiss";
    dismiss.addEventListener("click", () => {
      p.el.remove();
      this.forget(id);
    });
    p.el.append(dismiss);
  }

  refuseLastSent(reason) {
    if (this.lastSent !== null) this.refuse(this.lastSent, reason);
  }

  /** Remove message ``id`` (its text goes back to the box): its text, or null. */
  take(id) {
    const p = this.items.get(id);
    if (!p || p.acked) return null;
    p.el.remove();
    this.forget(id);
    return p.text;
  }

  forget(id) {
    this.items.delete(id);
    this.save();
  }

  clear() {
    this.items.clear();
    this.list.replaceChildren();
    this.save();
  }

  save() {
    const waiting = [];
    for (const [id, p] of this.items) {
      if (!p.acked && !p.failed) waiting.push({ id, text: p.text, kind: p.kind, user: p.user });
    }
    if (waiting.length) store.setItem(this.key, JSON.stringify(waiting));
    else store.removeItem(this.key);
  }

  restore() {
    let saved;
    try {
      saved = JSON.parse(store.getItem(this.key) || "[]");
    } catch {
      return;
    }
    for (const m of Array.isArray(saved) ? saved : []) {
      if (m && typeof m.id === "string" && typeof m.text === "string") {
        this.add(m.id, m.text, m.kind === "action" ? "action" : "text", m.user || null);
      }
    }
  }
}

function setState(p, text, failed = false) {
  let tag = p.el.querySelector(".state");
  if (!tag) {
    tag = el("span", "state");
    p.el.append(tag);
  }
  tag.textContent = text;
  p.el.classList.toggle("failed", failed);
}
