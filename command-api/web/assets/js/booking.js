// Checkout: the hold's countdown, payment with a test card, the live status (the owner's
// `booking_status` frames, with a re-read as fallback), then the tickets with QR codes and
// the invoice. Reads pass the command's `X-Event-Position` so they see the command's effect.

import { call, dateTime, esc, explain, get, header, money, pathId, requireSignIn, seatParts, toast } from "./api.js";
import { connect, liveIndicator } from "./live.js";
import { newKey } from "./keys.js";
import { drawCodes, ticketHtml, wireTicketActions } from "./ticketcard.js";

header();
const bookingId = pathId();
const POSITION = `ticketing.position.${bookingId}`;
const $ = (id) => document.getElementById(id);
const FINAL = new Set(["confirmed", "cancelled", "expired", "refunded"]);
const WORDS = { held: "Held", payment_pending: "Payment pending", confirmed: "Confirmed", cancelled: "Cancelled", expired: "Expired", refund_pending: "Refund pending", refunded: "Refunded" };

let booking = null;
let event = null;
let ticketsShown = false;
let countdownTimer = null;

let shown = null;

function setStatus(status, reason) {
  // A read model may trail a pushed frame: a final status is never replaced by an earlier one.
  if (FINAL.has(shown) && !FINAL.has(status) && status !== "refund_pending") return;
  shown = status;
  const el = $("status");
  el.dataset.bookingStatus = status;
  el.className = `badge ${status}`;
  el.textContent = WORDS[status] || status;
  const box = $("reason");
  if (status === "cancelled" || status === "expired") {
    const why = reason ? `: ${reason}` : "";
    box.innerHTML = `<p class="notice bad">This booking was ${esc(status)}${esc(why)}. Your places were released. <a href="/events/${esc(booking?.event_id || "")}">Pick seats again</a></p>`;
  } else if (status === "confirmed") {
    box.innerHTML = `<p class="notice ok">Paid. Enjoy the show!</p>`;
  } else if (status === "payment_pending") {
    box.innerHTML = `<p class="notice">Waiting for your bank…</p>`;
  } else box.innerHTML = "";
  $("pay-box").hidden = status !== "held";
  $("cancel").hidden = !(status === "held" || status === "payment_pending");
  $("countdown-box").hidden = !(status === "held" || status === "payment_pending");
  if (status === "confirmed") showTickets();
}

function tick() {
  if (!booking?.hold_expires_at) return;
  const left = Math.max(0, Math.floor((new Date(booking.hold_expires_at) - Date.now()) / 1000));
  $("countdown").textContent = `${String(Math.floor(left / 60)).padStart(2, "0")}:${String(left % 60).padStart(2, "0")}`;
  $("countdown").setAttribute("aria-label", `${Math.floor(left / 60)} minutes ${left % 60} seconds left`);
}

function render() {
  $("back").href = `/events/${booking.event_id}`;
  const lines = [];
  for (const seat of booking.seats || []) {
    const { section, row, number } = seatParts(seat);
    const name = event?.sections.find((s) => s.section_id === section)?.name || section;
    lines.push(`<li><span>${esc(name)} · Row ${esc(row)} · Seat ${esc(number)}</span></li>`);
  }
  for (const ga of booking.general_admission || []) {
    const name = event?.sections.find((s) => s.section_id === ga.section_id)?.name || ga.section_id;
    lines.push(`<li><span>${esc(name)} × ${esc(ga.quantity)}</span></li>`);
  }
  if (booking.discount?.amount_minor > 0) {
    lines.push(`<li data-discount><span>Voucher</span><span>−${esc(money(booking.discount))}</span></li>`);
  }
  $("lines").innerHTML = lines.join("");
  if (booking.offer) $("countdown-label").textContent = "Held for you from the waiting list for";
  $("total").textContent = money(booking.total);
  $("pay").textContent = `Pay ${money(booking.total)}`;
  if (event) {
    $("event-name").textContent = event.name;
    $("event-when").textContent = `${dateTime(event.starts_at)} · ${event.venue}`;
  }
  setStatus(booking.status, booking.failure_reason);
  clearInterval(countdownTimer);
  if (!FINAL.has(booking.status)) {
    tick();
    countdownTimer = setInterval(tick, 1000);
  }
}

async function refresh() {
  try {
    booking = await get(`/api/bookings/${bookingId}`, { minPosition: sessionStorage.getItem(POSITION) || undefined });
  } catch (err) {
    if (err.status === 404) $("reason").innerHTML = `<p class="notice bad">No such booking.</p>`;
    return;
  }
  if (!event) {
    try {
      event = await get(`/api/events/${booking.event_id}`);
    } catch {
      /* the order still shows without the event's names */
    }
  }
  render();
}

async function showTickets() {
  if (ticketsShown) return;
  ticketsShown = true;
  $("tickets-box").hidden = false;
  // Tickets come from the bookings read model, which may trail the confirmation briefly.
  const deadline = Date.now() + 30000;
  let mine = [];
  while (Date.now() < deadline) {
    const all = await get("/api/tickets", { minPosition: sessionStorage.getItem(POSITION) || undefined }).catch(() => []);
    mine = all.filter((t) => t.booking_id === bookingId);
    if (mine.length && mine.length >= (booking?.tickets?.length || 1)) break;
    await new Promise((r) => setTimeout(r, 700));
  }
  $("tickets-wait").hidden = mine.length > 0;
  const list = $("tickets");
  list.innerHTML = mine.map((t) => ticketHtml(t, event)).join("");
  await drawCodes(list, mine);
  wireTicketActions(list, () => location.reload());
  list.dataset.ready = "true";
  showInvoice();
}

async function showInvoice() {
  const invoices = await get("/api/invoices").catch(() => []);
  const invoice = invoices.find((i) => i.booking_id === bookingId && i.kind === "invoice");
  if (!invoice) return;
  $("documents").innerHTML = `<button type="button" class="secondary" id="invoice">Download invoice ${esc(invoice.number)} (PDF)</button>`;
  $("invoice").addEventListener("click", async () => {
    const { body } = await call("GET", `/api/invoices/${invoice.invoice_id}/pdf`, { as: "blob" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(body);
    a.download = `invoice-${invoice.number}.pdf`;
    a.click();
  });
}

async function pay(e) {
  e.preventDefault();
  const token = new FormData(e.currentTarget).get("token");
  $("pay").disabled = true;
  try {
    const reply = await call("POST", `/api/bookings/${bookingId}/pay`, { body: { payment_token: token }, headers: { "idempotency-key": newKey() } });
    const position = reply.headers.get("x-event-position");
    if (position) sessionStorage.setItem(POSITION, position);
    if (!FINAL.has(booking.status)) setStatus(reply.body.status);
  } catch (err) {
    if (err.status !== 401) toast(explain(err));
    await refresh();
  } finally {
    $("pay").disabled = false;
  }
}

async function cancel() {
  if (!confirm("Cancel this booking and release the places?")) return;
  try {
    const reply = await call("POST", `/api/bookings/${bookingId}/cancel`, { headers: { "idempotency-key": newKey() } });
    const position = reply.headers.get("x-event-position");
    if (position) sessionStorage.setItem(POSITION, position);
    setStatus(reply.body.status);
  } catch (err) {
    if (err.status !== 401) toast(explain(err));
  }
}

function onFrame(frame) {
  if ((frame.type === "booking_status" || frame.type === "payment_status") && frame.booking_id === bookingId) {
    if (frame.type === "booking_status") {
      if (booking) booking.status = frame.status;
      setStatus(frame.status, frame.failure_reason);
    }
    if (FINAL.has(frame.status)) refresh();
  }
}

if (requireSignIn()) {
  $("pay-form").addEventListener("submit", pay);
  $("cancel").addEventListener("click", cancel);
  connect({ onMessage: onFrame, onOpen: refresh, onState: liveIndicator($("live")) });
  refresh();
  // The fallback while the socket is down: re-read until the booking is final.
  setInterval(() => {
    if (booking && !FINAL.has(booking.status)) refresh();
  }, 2500);
}
