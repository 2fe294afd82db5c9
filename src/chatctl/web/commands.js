// chatctl web client: the /commands typed in the message box.
import { highlightCommand } from "./notify.js";
import { state } from "./state.js";

export const HELP = [
  "/me ACTION \u2013 send an action: * you ACTION",
  "/join ROOM \u2013 open another room (it stays open in the list)",
  "/query USER \u2013 a direct conversation",
  "/part \u2013 leave this room",
  "/who \u2013 list the users in the room",
  "/clear \u2013 clear the messages shown",
  "/highlight [WORD] \u2013 be notified of WORD as of your name; -WORD removes it; alone: list",
  "/unhighlight WORD \u2013 stop being notified of WORD",
  "/kick USER [REASON], /mute USER DURATION [REASON], /unmute USER, /ban USER [DURATION] [REASON], /unban USER \u2013 moderators",
  "/delete ID [REASON] \u2013 delete a message (yours; any as a moderator)",
  "//text \u2013 send text that starts with /",
  "Enter sends, Shift+Enter starts a new line, Tab completes a name, Up recalls your last message.",
];

/** Run a /command; false leaves the text in the box (it was not done). */
export function command(line, act) {
  const room = state.room;
  if (line.startsWith("//")) return act.post(line.slice(1), "text");
  const [, name, arg = ""] = line.match(/^\/(\S*)\s*([\s\S]*)$/);
  switch (name.toLowerCase()) {
    case "me":
      if (!arg.trim()) {
        act.note("usage: /me ACTION (e.g. /me waves)");
        return false;
      }
      return act.post(arg.trim(), "action");
    case "join":
      return act.open(arg.trim());
    case "query":
      return act.open("@" + arg.trim().replace(/^@/, ""));
    case "part":
    case "leave":
      return act.part(room);
    case "who":
    case "names":
      if (!room.send({ type: "who" })) act.notice(room, "not connected", "error");
      return true;
    case "clear":
      room.log.replaceChildren();
      room.lastDay = null;
      return true;
    case "highlight":
    case "unhighlight":
      for (const h of highlightCommand(arg, name.toLowerCase() === "unhighlight")) act.notice(room, h);
      return true;
    case "help":
      for (const h of HELP) act.notice(room, h);
      return true;
    case "kick":
    case "mute":
    case "unmute":
    case "ban":
    case "unban":
    case "delete":
      return moderate(name.toLowerCase(), arg.trim().split(/\s+/).filter(Boolean), act);
    case "say":
      return arg ? act.post(arg, "text") : true;
    default:
      act.note("no command /" + name + " (/help lists them; //text sends text starting with /)");
      return false;
  }
}

const DURATION = /^(\d{1,9}|(\d{1,9}[smhdw])+)$/i;

/** /kick /mute /unmute /ban /unban /delete: a moderate or delete frame (docs/protocol.md). */
function moderate(action, words, act) {
  const room = state.room;
  const frame = { type: action === "delete" ? "delete" : "moderate", client_id: "m-" + Date.now() };
  if (action === "delete") {
    if (!/^\d+$/.test(words[0] || "")) return act.note("usage: /delete ID [REASON] (ID: a message id)"), false;
    frame.id = Number(words.shift());
  } else {
    if (!words[0]) return act.note("usage: /" + action + " USER"), false;
    Object.assign(frame, { action, user: words.shift().replace(/^@/, "") });
    if (action === "mute" && !DURATION.test(words[0] || "")) {
      return act.note("/mute: a duration is 30s, 10m, 2h, 1d, 1w or 1h30m"), false;
    }
    if ((action === "mute" || action === "ban") && DURATION.test(words[0] || "")) frame.duration = words.shift();
  }
  if (words.length) frame.reason = words.join(" ");
  if (!room.send(frame)) act.notice(room, "not connected", "error");
  return true;
}
