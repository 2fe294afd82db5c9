// chatctl web client: when the token ends. A browser has no --token-command, so the page
// reads the token's exp (the JWT's middle part; its signature is the server's business)
// and warns ahead of it; a new link or a pasted token then renews every open connection
// with a refresh frame, keeping the rooms and the messages not yet sent.

/** How long before ``exp`` the warning shows, in seconds. */
export const WARN_BEFORE_S = 600;

/** The token's ``exp`` (Unix seconds), or null when it has none or is not a JWT. */
export function tokenExp(token) {
  const part = (token || "").split(".")[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const exp = JSON.parse(json).exp;
    return typeof exp === "number" ? exp : null;
  } catch {
    return null;
  }
}

/** "in 4 min", "in 30 s", "now". */
export function untilText(seconds) {
  if (seconds <= 0) return "now";
  if (seconds < 90) return "in " + Math.ceil(seconds) + " s";
  return "in " + Math.round(seconds / 60) + " min";
}

/** Shows ``banner`` (with ``text`` in it) from WARN_BEFORE_S before ``exp`` on. */
export class ExpiryWarning {
  constructor(banner, text) {
    this.banner = banner;
    this.text = text;
    this.exp = null;
    this.timer = null;
  }

  watch(exp) {
    this.exp = exp;
    clearInterval(this.timer);
    this.timer = null;
    this.update();
    if (exp !== null) this.timer = setInterval(() => this.update(), 1000);
  }

  update() {
    const left = this.exp === null ? Infinity : this.exp - Date.now() / 1000;
    const show = left <= WARN_BEFORE_S;
    if (show) {
      this.text.textContent =
        "Your sign-in ends " + untilText(left) + ": open a new join link or paste a new token to stay connected.";
    }
    if (this.banner.hidden === show) this.banner.hidden = !show;
  }
}
