// chatctl web client: what the page's modules share: who is signed in, the open rooms and
// the one shown.
import { randomId } from "./render.js";

export const $ = (id) => document.getElementById(id);

export const state = {
  token: null,
  me: null,
  rooms: new Map(), // name -> Room (room.js), in the order they were opened
  room: null, // the Room shown
  seq: 0,
  session: randomId(),
  maxChars: 8000, // the server's --max-message default; a refusal names the actual one
  lastSent: "", // what Up recalls in an empty box
  open: null, // openRoom(name), set by app.js: the side panel's buttons call it
};
