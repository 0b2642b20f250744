// The public API as the pages use it: the signed-in session (a short-lived access token and
// the session's refresh token in localStorage), JSON calls that turn problem+json answers
// into `Problem`s, formatting, and the page header. An access token about to expire is
// refreshed first; a session that cannot be refreshed sends the person to /login and back.

// Controls for endpoints that do not exist yet stay off until they do (API.md, Commerce and
// Sessions); each page renders them only when its flag is on.
export const FEATURES = {
  vouchers: true,
  bestAvailable: true,
  waitingList: true,
  transfers: true,
  ticketPdf: true,
  refreshTokens: true,
};

const TOKEN = "ticketing.token";
const NAME = "ticketing.name";
const REFRESH = "ticketing.refresh";

export class Problem extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

function decode(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch {
    return null;
  }
}

export function token() {
  return localStorage.getItem(TOKEN);
}

const fresh = (c, marginMs) => c && typeof c.exp === "number" && c.exp * 1000 >= Date.now() + marginMs;

/**
 * The session's claims: the access token's while it is valid (with a few seconds' margin),
 * or, when it has expired but the session can be refreshed, the last ones it carried.
 */
export function claims() {
  const t = token();
  const c = t && decode(t);
  if (fresh(c, 5000)) return c;
  return c && localStorage.getItem(REFRESH) ? c : null;
}

export const signedIn = () => claims() !== null;
export const hasRole = (role) => (claims()?.roles || []).includes(role);

/** Stores a login's (or a refresh's) answer. */
export function signIn(accessToken, name, refreshToken) {
  localStorage.setItem(TOKEN, accessToken);
  if (name) localStorage.setItem(NAME, name);
  if (refreshToken) localStorage.setItem(REFRESH, refreshToken);
}

export function signOut() {
  localStorage.removeItem(TOKEN);
  localStorage.removeItem(NAME);
  localStorage.removeItem(REFRESH);
}

/** Ends the session on the server too (its refresh token stops working), then locally. */
export async function logOut() {
  const t = token();
  if (t) await fetch("/api/auth/logout", { method: "POST", headers: { authorization: `Bearer ${t}` } }).catch(() => {});
  signOut();
}

/**
 * Trades the refresh token for new tokens. A refresh token is single use and presenting a
 * spent one revokes the session, so tabs take turns (a Web Lock) and a tab that waited first
 * looks whether another one already refreshed. Resolves true when a usable token is stored.
 */
async function refreshOnce(force) {
  const run = async () => {
    if (!force && fresh(decode(token() || ""), 30000)) return true;
    const refreshToken = localStorage.getItem(REFRESH);
    if (!refreshToken) return false;
    const response = await fetch("/api/auth/refresh", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ refresh_token: refreshToken }),
    }).catch(() => null);
    if (!response) return fresh(decode(token() || ""), 0); // offline: keep what we have
    if (!response.ok) {
      // Another tab may have rotated it meanwhile; only a token nobody replaced is dead.
      if (localStorage.getItem(REFRESH) === refreshToken) signOut();
      return false;
    }
    const body = await response.json();
    signIn(body.access_token, null, body.refresh_token);
    return true;
  };
  return navigator.locks ? navigator.locks.request("ticketing.refresh", run) : run();
}

let refreshing = null;
/** Makes sure the stored access token is good for the next 30 s, refreshing if it can. */
export async function ensureFresh(force = false) {
  if (!force && fresh(decode(token() || ""), 30000)) return true;
  if (!localStorage.getItem(REFRESH)) return false;
  refreshing ??= refreshOnce(force).finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** A same-origin path to come back to; anything else becomes the storefront. */
export function safeNext(next) {
  return typeof next === "string" && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export function loginUrl(next = location.pathname + location.search) {
  return `/login?next=${encodeURIComponent(next)}`;
}

/** Sends the person to log in; the page keeps what they were doing in sessionStorage. */
export function toLogin(reason) {
  if (reason) sessionStorage.setItem("ticketing.login-reason", reason);
  location.assign(loginUrl());
}

/**
 * Calls the API. Returns `{status, body, headers}`; throws `Problem` for 4xx/5xx. A 401 on a
 * call that sent a token means the session ended: the person is sent to log in. `auth: false`
 * sends no token (sign-in and sign-up, whose 401 means a wrong password).
 */
export async function call(method, path, options = {}, retried = false) {
  const { body, headers = {}, as = "json", minPosition, auth = true } = options;
  if (auth && token() && !(await ensureFresh()) && !token()) {
    // The session could not be refreshed (ended elsewhere, or too old).
    toLogin("Your session has ended. Sign in again to continue.");
    throw new Problem(401, {});
  }
  const h = { accept: "application/json, application/problem+json", ...headers };
  const t = auth ? token() : null;
  if (t) h.authorization = `Bearer ${t}`;
  if (body !== undefined) h["content-type"] = "application/json";
  if (minPosition) h["x-min-position"] = minPosition;
  const response = await fetch(path, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      /* an empty or non-JSON error body */
    }
    if (response.status === 401 && t && !retried && (await ensureFresh(true))) {
      return call(method, path, options, true);
    }
    if (response.status === 401 && t) {
      signOut();
      toLogin("Your session has ended. Sign in again to continue.");
    }
    throw new Problem(response.status, problem);
  }
  let out = null;
  if (response.status !== 204) out = as === "text" ? await response.text() : as === "blob" ? await response.blob() : await response.json();
  return { status: response.status, body: out, headers: response.headers };
}

export const get = async (path, options) => (await call("GET", path, options)).body;
export const post = async (path, body, options) => (await call("POST", path, { ...options, body }));

/** Where the page's query string or path names a resource. */
export const pathId = () => location.pathname.split("/").filter(Boolean).pop();

// One formatter per currency: building one costs far more than formatting with it.
const formats = new Map();
function currencyFormat(currency) {
  let format = formats.get(currency);
  if (!format) {
    format = new Intl.NumberFormat("en-GB", { style: "currency", currency });
    formats.set(currency, format);
  }
  return format;
}

export function money(m) {
  if (!m) return "";
  const format = currencyFormat(m.currency);
  return format.format(m.amount_minor / 10 ** format.resolvedOptions().maximumFractionDigits);
}

export function minorUnits(currency) {
  return currencyFormat(currency).resolvedOptions().maximumFractionDigits;
}

export const dateTime = (iso) =>
  new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
export const timeOnly = (iso) =>
  new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(iso));

/** HTML-escapes text for the templates below. */
export function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** "stalls:A:12" → {section, row, number}. */
export function seatParts(seatId) {
  const [section, row, number] = String(seatId).split(":");
  return { section, row, number };
}

let toastTimer;
export function toast(message) {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = message;
  el.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("show"), 4000);
}

/** Fills the header: who is signed in, sign-in/out, the organizer link for organizers. */
export function header() {
  const who = document.getElementById("who");
  const c = claims();
  for (const link of document.querySelectorAll("[data-needs-role]")) {
    link.hidden = !(c && (hasRole(link.dataset.needsRole) || hasRole("admin")));
  }
  if (!who) return;
  if (!c) {
    who.innerHTML = `<a href="${esc(loginUrl())}">Sign in</a><a href="/register">Create account</a>`;
    return;
  }
  const name = localStorage.getItem(NAME) || "Signed in";
  who.innerHTML = `<span>${esc(name)}</span><button type="button" id="sign-out">Sign out</button>`;
  document.getElementById("sign-out").addEventListener("click", async () => {
    await logOut();
    location.assign("/");
  });
}

/** Pages that need a session call this first; it sends the person to log in otherwise. */
export function requireSignIn() {
  if (signedIn()) return true;
  if (token()) signOut();
  toLogin();
  return false;
}

/** Messages for the problems people meet, keyed by status. */
export function explain(err) {
  if (!(err instanceof Problem)) return "Something went wrong. Check your connection and try again.";
  if (err.status === 429) return "Too many attempts. Wait a moment and try again.";
  if (err.status >= 500) return "The service is busy. Try again in a moment.";
  return err.message;
}
