// chatctl web client: desktop notifications and highlight words.
//
// A message from someone else that names the user or one of their highlight words (as a whole
// word, in any case), or any message in a direct conversation (a room named "@bob"), shows a
// desktop notification while the tab is hidden, once the user turned them on with the side
// panel's switch: permission is asked for then, on that click, never on load. Clicking the
// notification brings the tab forward with that room shown. Highlight words (/highlight)
// are kept in the browser's local storage, as is the switch.
import { mentions, visible } from "./render.js";
import { $, state } from "./state.js";

const store = window.localStorage;
const KEY = { on: "chatctl.notify", words: "chatctl.highlight" };
const MAX_WORD = 64;
const supported = "Notification" in window;

/** A direct conversation: the room is named after the other user ("@bob"). */
export function isDirect(name) {
  return name.startsWith("@");
}

export function highlightWords() {
  try {
    const words = JSON.parse(store.getItem(KEY.words) || "[]");
    return Array.isArray(words) ? words.filter((w) => typeof w === "string" && w) : [];
  } catch {
    return [];
  }
}

/** Whether ``text`` names the user or one of the highlight words (as shown: a colour's
 * escape sequence around a name does not hide it). */
export function highlighted(text) {
  const shown = visible(String(text));
  return [state.me, ...highlightWords()].some((w) => mentions(shown, w));
}

/** Add (``WORD``), remove (``-WORD``) or list (nothing) highlight words; the lines to show. */
export function highlightCommand(arg, remove = false) {
  let words = highlightWords();
  const given = arg.split(/\s+/).filter(Boolean);
  if (!given.length) {
    if (remove) return ["usage: /unhighlight WORD (/highlight lists them)"];
    return [words.length ? "highlight words: " + words.join(", ") + " (and your name)" : "no highlight words (your name alerts; /highlight WORD adds one)"];
  }
  const out = [];
  for (let word of given) {
    const drop = remove || (word.startsWith("-") && word.length > 1);
    if (drop && !remove) word = word.slice(1);
    const same = (w) => w.toLowerCase() === word.toLowerCase();
    if (drop) {
      out.push(words.some(same) ? word + " is no longer highlighted" : word + " is not a highlight word");
      words = words.filter((w) => !same(w));
    } else if ([...word].length > MAX_WORD) {
      out.push(word + " is not a highlight word: 1-" + MAX_WORD + " characters, no spaces");
    } else if (words.some(same)) {
      out.push(word + " is already a highlight word");
    } else {
      words.push(word);
      out.push("highlighting " + word);
    }
  }
  store.setItem(KEY.words, JSON.stringify(words));
  return out;
}

function enabled() {
  return supported && Notification.permission === "granted" && store.getItem(KEY.on) === "on";
}

/** The side panel's switch: its state, and the reason when it cannot be on. */
function render() {
  const box = $("notify");
  const why = $("notify-why");
  box.checked = enabled();
  const denied = supported && Notification.permission === "denied";
  why.textContent = denied ? "blocked in this browser's site settings" : "";
  why.hidden = !denied;
}

async function toggled() {
  const box = $("notify");
  if (!box.checked) {
    store.setItem(KEY.on, "off");
  } else {
    // asked on this click only, never on load
    const permission = Notification.permission === "default" ? await Notification.requestPermission() : Notification.permission;
    store.setItem(KEY.on, permission === "granted" ? "on" : "off");
  }
  render();
}

/** A live message of ``room`` (not the history of a welcome): notify when it calls for it. */
export function notifyMessage(room, f) {
  if (!enabled() || !document.hidden || f.user === state.me) return;
  const direct = isDirect(room.name);
  if (!direct && !highlighted(f.message)) return;
  const user = visible(String(f.user));
  const title = direct ? user + " (direct message)" : user + " in #" + room.name;
  const text = visible(String(f.message));
  const note = new Notification(title, {
    body: f.kind === "action" ? "* " + user + " " + text : text,
    tag: "chatctl:" + room.name, // one per room: the newest replaces the one before
    renotify: true,
    icon: "static/icon.svg",
  });
  note.onclick = () => {
    window.focus();
    if (state.open) state.open(room.name);
    note.close();
  };
}

export function setupNotifications() {
  if (!supported) return;
  $("notify-row").hidden = false;
  $("notify").addEventListener("change", toggled);
  render();
}
