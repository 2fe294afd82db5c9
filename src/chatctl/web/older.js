// chatctl web client: older messages from the server (a history request, docs/protocol.md)
// when the pane is scrolled to its top, put above what is shown without moving it.
import { $, state } from "./state.js";
import { dayNode, mentions, messageNode } from "./render.js";

const HISTORY_PAGE = 50; // older messages asked for at a time

/** Ask for the messages before the oldest one shown, unless asked already or none are left. */
export function loadOlder(room) {
  if (!room.more || room.loading || !room.welcomed) return;
  room.loading = room.send({ type: "history", before: room.firstId, limit: HISTORY_PAGE, client_id: "h-" + room.firstId });
}

/** A pane not filled yet cannot be scrolled to its top: load until it is (or nothing is left). */
export function loadOlderIfShort(room) {
  const c = $("chat");
  if (room === state.room && c.scrollHeight <= c.clientHeight) loadOlder(room);
}

export function onHistory(room, f) {
  room.loading = false;
  if (f.epoch !== room.epoch) return;
  const older = (f.messages || []).filter((m) => typeof m.id === "number" && m.id < room.firstId);
  const nodes = [];
  let day = null;
  for (const m of older) {
    const date = new Date(m.ts * 1000);
    if (date.toDateString() !== day) nodes.push(dayNode(date));
    day = date.toDateString();
    const li = messageNode(m.user, m.message, m.kind, date, m.display);
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
