// The notifier's WebSocket, as every page uses it: one reconnecting connection (the vendored
// ReconnectingWebSocket from partysocket does the backoff), the rooms re-subscribed after each
// (re)connect, and `onOpen` called then so the page re-reads what it shows. The URL is built
// per attempt from the current token; an expired token (close 4001, or none left) sends the
// person to log in.

import ReconnectingWebSocket from "../vendor/reconnecting-websocket.js";
import { ensureFresh, signedIn, token, toLogin } from "./api.js";

export function notifierUrl() {
  const configured = document.querySelector('meta[name="notifier-url"]')?.content;
  if (configured) return configured;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.hostname}:8081/ws`;
}

/**
 * Connects to the notifier. `rooms` are `event:{id}` rooms to join (the user's own room is
 * implicit); `onMessage(frame)` gets every server frame; `onOpen()` runs after every
 * (re)connect, once the subscriptions are sent; `onState("live" | "reconnecting")`.
 */
export function connect({ rooms = [], onMessage, onOpen, onState }) {
  // Every (re)connect asks for a token good for a while: the notifier closes a socket whose
  // token expires (4001), and the reconnect comes back with a refreshed one.
  const url = async () => {
    if (!signedIn() || !(await ensureFresh())) {
      toLogin("Your session has ended. Sign in again to continue.");
      return new Promise(() => {}); // never connects; the page is leaving
    }
    return `${notifierUrl()}?token=${encodeURIComponent(token())}`;
  };
  const socket = new ReconnectingWebSocket(url, [], {
    // Jittered, so clients cut off together do not come back together.
    minReconnectionDelay: 400 + Math.random() * 400,
    maxReconnectionDelay: 10000,
    reconnectionDelayGrowFactor: 1.6,
    connectionTimeout: 4000,
    // Subscriptions are sent on every open; nothing is queued while closed.
    maxEnqueuedMessages: 0,
  });
  socket.addEventListener("open", () => {
    for (const room of rooms) socket.send(JSON.stringify({ type: "subscribe", room }));
    onState?.("live");
    onOpen?.();
  });
  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    onMessage?.(frame);
  });
  socket.addEventListener("close", (event) => {
    if (event.code === 4001) {
      socket.close();
      toLogin("Your session has ended. Sign in again to continue.");
      return;
    }
    onState?.("reconnecting");
  });
  return socket;
}

/** Shows the connection state in a `.live` element. */
export function liveIndicator(el) {
  return (state) => {
    if (!el) return;
    el.dataset.live = state;
    el.textContent = state === "live" ? "Live" : "Reconnecting…";
  };
}
