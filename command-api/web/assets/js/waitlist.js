// The waiting-list panel of a sold-out event: join with a quantity, see one's place in line,
// then the offer once places free up (pushed as a `waitlist_offer` frame, and read again after
// every reconnect), or leave. The panel shows while the event is sold out or the person is on
// its list.

import { Problem, call, esc, explain, get, post, signedIn, timeOnly, toLogin, toast } from "./api.js";
import { newKey } from "./keys.js";

export class WaitlistPanel {
  constructor(slot, eventId) {
    this.slot = slot;
    this.eventId = eventId;
    this.soldOut = false;
    this.entry = null;
    this.path = `/api/events/${eventId}/waitlist`;
  }

  /** Re-reads the person's entry; `soldOut` says whether anything is left to book. */
  async refresh(soldOut) {
    this.soldOut = soldOut;
    this.entry = null;
    if (signedIn()) {
      try {
        this.entry = await get(this.path);
      } catch (err) {
        if (!(err instanceof Problem) || (err.status !== 404 && err.status !== 401)) console.warn("waiting list read failed", err);
      }
    }
    this.render();
  }

  /** A `waitlist_offer` frame for this event. */
  offered(frame) {
    this.entry = { ...(this.entry || {}), status: "offered", position: 0, booking_id: frame.booking_id, expires_at: frame.expires_at };
    toast("Places freed up and they are held for you. Pay before the offer runs out.");
    this.render();
  }

  render() {
    const entry = this.entry;
    if (!entry && !this.soldOut) {
      this.slot.hidden = true;
      return;
    }
    this.slot.hidden = false;
    let body;
    if (!entry || entry.status === "expired") {
      const lapsed = entry ? `<p class="muted">Your last offer ran out unpaid. You can join again, at the end of the line.</p>` : "";
      body = `<h2>Sold out</h2>${lapsed}
        <p>Join the waiting list: when places free up they are held for the first person in line they fit, and you hear about it here and by email.</p>
        <label class="field">Places
          <input id="waitlist-quantity" type="number" min="1" max="10" value="2" inputmode="numeric"></label>
        <button type="button" id="waitlist-join" class="wide">Join the waiting list</button>`;
    } else if (entry.status === "waiting") {
      body = `<h2>You are on the waiting list</h2>
        <p>Number <strong data-waitlist-position="${entry.position}">${entry.position}</strong> in line for ${entry.quantity} ${entry.quantity === 1 ? "place" : "places"}.</p>
        <p class="muted">Keep an eye on your email: an offer is held for you for a limited time.</p>
        <button type="button" id="waitlist-leave" class="secondary">Leave the waiting list</button>`;
    } else {
      const until = entry.expires_at ? ` until ${esc(timeOnly(entry.expires_at))}` : "";
      body = `<h2>Places are held for you</h2>
        <p>From the waiting list${until}.</p>
        <a class="button wide" id="waitlist-offer" href="/bookings/${esc(entry.booking_id)}">See and pay the offer</a>`;
    }
    this.slot.innerHTML = `<div class="card waitlist" data-waitlist-status="${esc(entry ? entry.status : "none")}" aria-live="polite">${body}<div id="waitlist-message" role="alert"></div></div>`;
    this.slot.querySelector("#waitlist-join")?.addEventListener("click", () => this.join());
    this.slot.querySelector("#waitlist-leave")?.addEventListener("click", () => this.leave());
  }

  async join() {
    if (!signedIn()) {
      toLogin("Sign in to join the waiting list.");
      return;
    }
    const quantity = Number(this.slot.querySelector("#waitlist-quantity").value);
    try {
      this.entry = (await post(this.path, { quantity }, { headers: { "idempotency-key": newKey() } })).body;
      this.render();
    } catch (err) {
      const message = err.status === 409 ? "Places are available again: pick them on the map." : explain(err);
      this.slot.querySelector("#waitlist-message").innerHTML = `<p class="notice bad">${esc(message)}</p>`;
    }
  }

  async leave() {
    try {
      await call("DELETE", this.path);
    } catch (err) {
      if (err.status !== 404) {
        this.slot.querySelector("#waitlist-message").innerHTML = `<p class="notice bad">${esc(explain(err))}</p>`;
        return;
      }
    }
    this.entry = null;
    this.render();
  }
}
