// The event page: details, the waiting room for queue-enabled events, the live seat map and
// the selection, then the hold. Live: `seat_status` frames from the notifier change seats as
// they arrive; after every (re)connect the page re-reads availability (frames that arrive
// meanwhile are applied again after the read, so nothing newer is overwritten).

import { FEATURES, Problem, call, dateTime, esc, explain, get, header, money, pathId, post, signedIn, toLogin, toast } from "./api.js";
import { connect, liveIndicator } from "./live.js";
import { SeatMap } from "./seatmap.js";
import { newKey } from "./keys.js";
import { WaitlistPanel } from "./waitlist.js";

header();
const eventId = pathId();
const SELECTION = `ticketing.selection.${eventId}`;
const $ = (id) => document.getElementById(id);

// Measurements the browser test reads (Performance API).
const perf = (window.__ticketing = { selection: [], eventTiming: [], frames: 0, startMs: performance.now() });
try {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.target?.dataset?.seatId) perf.eventTiming.push({ name: entry.name, duration: entry.duration });
    }
  }).observe({ type: "event", durationThreshold: 16, buffered: true });
} catch {
  /* Event Timing is not in every browser */
}

let map = null;
let event = null;
let resyncing = false;
const pending = []; // frames that arrived before the map or during a re-read
let queueUpdate = null;
let waitlist = null;
const sectionAvailable = new Map(); // section id → places left, from reads and frames
let lastSoldOut = null;

/// Keeps the per-section counts; the waiting-list panel is re-read whenever the event turns
/// sold out or stops being so (and after every re-read, when `lastSoldOut` was reset).
function noteAvailability(sections) {
  for (const s of sections) sectionAvailable.set(s.section_id, s.available);
  const soldOut = sectionAvailable.size > 0 && [...sectionAvailable.values()].every((n) => n === 0);
  if (waitlist && soldOut !== lastSoldOut) {
    lastSoldOut = soldOut;
    waitlist.refresh(soldOut);
  }
}

async function readAvailability() {
  const summary = await get(`/api/events/${eventId}/availability`);
  // Large events list seats per section only when asked; the sections are read side by side.
  const missing = summary.sections.filter((s) => s.kind === "seated" && !s.seats);
  const detailed = await Promise.all(missing.map((s) => get(`/api/events/${eventId}/availability?section_id=${encodeURIComponent(s.section_id)}`)));
  const bySection = new Map(detailed.map((d) => [d.sections[0].section_id, d.sections[0]]));
  summary.sections = summary.sections.map((s) => bySection.get(s.section_id) || s);
  return summary;
}

function reportLost(ids) {
  if (!ids.length) return;
  toast(`Just taken by someone else: ${ids.map((id) => id.split(":").slice(1).join("-")).join(", ")}`);
  updateSummary();
}

async function resync() {
  if (!map) return;
  resyncing = true;
  pending.length = 0;
  try {
    const availability = await readAvailability();
    const lost = map.applyAvailability(availability);
    for (const frame of pending) lost.push(...map.applyFrame(frame));
    reportLost(lost);
    lastSoldOut = null; // an offer may have come while the socket was down
    noteAvailability(availability.sections);
    for (const frame of pending) noteAvailability(frame.sections || []);
  } catch (err) {
    if (!(err instanceof Problem)) console.warn("availability read failed", err);
  } finally {
    resyncing = false;
    pending.length = 0;
  }
}

function onFrame(frame) {
  if (frame.type === "seat_status" && frame.event_id === eventId) {
    perf.frames++;
    if (!map || resyncing) pending.push(frame);
    if (map) reportLost(map.applyFrame(frame));
    noteAvailability(frame.sections || []);
  } else if (frame.type === "waitlist_offer" && frame.event_id === eventId) {
    waitlist?.offered(frame);
  } else if (frame.type === "queue_position" && frame.event_id === eventId) {
    queueUpdate?.(frame);
  } else if (frame.type === "announcement" && frame.event_id === eventId) {
    $("notice").innerHTML = `<p class="notice">${esc(frame.message)}</p>`;
  }
}

function saveSelection() {
  if (!map) return;
  const { seats, generalAdmission } = map.selection();
  const ga = Object.fromEntries(generalAdmission.map((g) => [g.section_id, g.quantity]));
  sessionStorage.setItem(SELECTION, JSON.stringify({ seats, ga }));
}

function seatName(id) {
  const [sectionId, row, number] = id.split(":");
  const section = event.sections.find((s) => s.section_id === sectionId);
  return `${section ? section.name : sectionId} · Row ${row} · Seat ${number}`;
}

function updateSummary(_changed, inputEvent) {
  const { lines } = map.selection();
  const list = $("selection-list");
  list.innerHTML = lines
    .map((l) => {
      const label = l.quantity ? `${l.name} × ${l.quantity}` : seatName(l.id);
      const price = l.price ? money({ ...l.price, amount_minor: l.price.amount_minor * (l.quantity || 1) }) : "";
      return `<li><span>${esc(label)}</span><span>${esc(price)}</span></li>`;
    })
    .join("");
  $("selection-empty").hidden = lines.length > 0;
  const priced = lines.filter((l) => l.price);
  const total = priced.reduce((n, l) => n + l.price.amount_minor * (l.quantity || 1), 0);
  $("selection-total").textContent = priced.length ? money({ amount_minor: total, currency: priced[0].price.currency }) : "—";
  const places = map.places;
  const hold = $("hold");
  hold.disabled = places === 0;
  hold.textContent = places === 0 ? "Hold seats" : `Hold ${places} ${places === 1 ? "place" : "places"}`;
  saveSelection();
  if (inputEvent && typeof inputEvent.timeStamp === "number") {
    // Input → the frame that shows it: measured after the next animation frame.
    const start = inputEvent.timeStamp;
    requestAnimationFrame(() => setTimeout(() => perf.selection.push(performance.now() - start), 0));
  }
}

async function hold() {
  if (!signedIn()) {
    saveSelection();
    toLogin("Sign in to hold your seats. Your selection is kept.");
    return;
  }
  const { seats, generalAdmission } = map.selection();
  const body = { event_id: eventId };
  if (seats.length) body.seats = seats;
  if (generalAdmission.length) body.general_admission = generalAdmission;
  await placeBooking(body, $("hold"));
}

/// The voucher code typed in the commerce slot, if any.
function voucherCode() {
  const code = ($("voucher-code")?.value || "").trim();
  return code || null;
}

/// Asks for the best `quantity` seats (the server chooses them on its current seat map).
async function holdBest() {
  if (!signedIn()) {
    toLogin("Sign in to hold your seats.");
    return;
  }
  const quantity = Number($("best-quantity").value);
  const body = { event_id: eventId, best_available: { quantity } };
  await placeBooking(body, $("best-hold"));
}

async function placeBooking(body, button) {
  const code = voucherCode();
  if (code) body.voucher_code = code;
  button.disabled = true;
  $("hold-message").innerHTML = "";
  try {
    const reply = await call("POST", "/api/bookings", { body, headers: { "idempotency-key": newKey() } });
    sessionStorage.removeItem(SELECTION);
    const position = reply.headers.get("x-event-position");
    if (position) sessionStorage.setItem(`ticketing.position.${reply.body.booking_id}`, position);
    location.assign(`/bookings/${reply.body.booking_id}`);
  } catch (err) {
    button.disabled = false;
    if (err.status === 409 && body.best_available) {
      $("hold-message").innerHTML = `<p class="notice bad">No ${body.best_available.quantity} seats side by side are left. Try fewer, or pick seats on the map.</p>`;
    } else if (err.status === 409) {
      for (const id of err.body.unavailable || []) map.setStatus(id, "held");
      for (const s of err.body.unavailable_sections || []) map.setSectionAvailable(s.section_id, s.available);
      updateSummary();
      $("hold-message").innerHTML = `<p class="notice bad">Some of your picks were just taken. They are marked on the map; choose others.</p>`;
    } else if (err.status === 422 && String(err.body.type || "").endsWith("/voucher-invalid")) {
      $("hold-message").innerHTML = `<p class="notice bad" data-voucher-error>That voucher code cannot be used here: ${esc(err.message)}.</p>`;
    } else if (err.status === 403 && String(err.body.type || "").includes("queue")) {
      location.reload();
    } else if (err.status !== 401) {
      $("hold-message").innerHTML = `<p class="notice bad">${esc(explain(err))}</p>`;
    }
  }
}

// Availability is public: its read starts with the page, beside the event's details.
let early = readAvailability();
early.catch(() => {});

async function openShop() {
  $("shop").hidden = false;
  const seatsReady = early || readAvailability();
  early = null;
  map = new SeatMap($("map"), event, { onChange: updateSummary });
  map.onLimit = () => toast("You can pick up to 10 places per booking.");
  const t0 = performance.now();
  let availability;
  try {
    availability = await seatsReady;
  } catch (err) {
    $("notice").innerHTML = `<p class="notice bad">${esc(explain(err))}</p>`;
    return;
  }
  perf.dataMs = performance.now();
  const statuses = new Map();
  for (const s of availability.sections) for (const seat of s.seats || []) statuses.set(seat.seat_id, seat.status);
  map.render(statuses);
  perf.builtMs = performance.now();
  map.applyAvailability(availability);
  if (FEATURES.waitingList) waitlist = new WaitlistPanel($("waitlist"), eventId);
  noteAvailability(availability.sections);
  for (const frame of pending.splice(0)) {
    map.applyFrame(frame);
    noteAvailability(frame.sections || []);
  }
  perf.renderMs = performance.now() - t0;
  $("hold").addEventListener("click", hold);
  const saved = JSON.parse(sessionStorage.getItem(SELECTION) || "null");
  if (saved) map.restore(saved.seats || [], saved.ga || {});
  else updateSummary();
  // Ready once the map has been painted.
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  perf.seatmapReadyMs = performance.now();
  perf.seats = map.seats.size;
  performance.mark("seatmap-ready");
  $("map").dataset.ready = "true";
  renderCommerce();
}

/// A voucher field and a "best seats" control, when the event has seated sections.
function renderCommerce() {
  const slot = $("commerce-slot");
  const seated = event.sections.some((s) => s.kind === "seated");
  let html = "";
  if (FEATURES.vouchers) {
    html += `<label class="field">Voucher code
      <input id="voucher-code" name="voucher_code" autocomplete="off" maxlength="32" spellcheck="false"></label>`;
  }
  if (FEATURES.bestAvailable && seated) {
    html += `<div class="best">
      <label class="field">Best seats, side by side
        <input id="best-quantity" type="number" min="1" max="10" value="2" inputmode="numeric"></label>
      <button type="button" id="best-hold" class="secondary">Hold the best seats</button>
    </div>`;
  }
  if (!html) return;
  slot.innerHTML = html;
  slot.dataset.enabled = "true";
  $("best-hold")?.addEventListener("click", holdBest);
}

function showQueue(place) {
  const panel = $("queue");
  panel.hidden = false;
  panel.innerHTML = `<div class="card queue" aria-live="polite">
    <h2>You are in the waiting room</h2>
    <p>Your place in line</p>
    <div class="pos" data-queue-position="${place.position}">${place.position}</div>
    <p class="muted">Keep this page open: you will be let in automatically, first come, first served.</p>
  </div>`;
}

/** Resolves once the person is admitted to a queue-enabled event. */
async function waitingRoom() {
  if (!signedIn()) {
    $("queue").hidden = false;
    $("queue").innerHTML = `<div class="card queue"><h2>This event has a waiting room</h2><p><a class="button" href="/login?next=${encodeURIComponent(location.pathname)}">Sign in to join the line</a></p></div>`;
    return new Promise(() => {});
  }
  const join = async () => (await post(`/api/events/${eventId}/queue`)).body;
  let place;
  try {
    place = await get(`/api/events/${eventId}/queue`);
    if (place.status === "expired") place = await join();
  } catch (err) {
    if (err.status !== 404) throw err;
    place = await join();
  }
  if (place.status === "admitted") return place;
  early = null; // read when admitted, not now
  showQueue(place);
  return new Promise((resolve) => {
    let done = false;
    queueUpdate = async (update) => {
      if (done) return;
      if (update.status === "admitted") {
        done = true;
        clearInterval(timer);
        $("queue").hidden = true;
        toast("It is your turn! Pick your seats.");
        resolve(update);
      } else if (update.status === "expired") {
        update = await join();
        showQueue(update);
      } else {
        const pos = document.querySelector("[data-queue-position]");
        if (pos) {
          pos.dataset.queuePosition = String(update.position);
          pos.textContent = String(update.position);
        }
      }
    };
    // Positions are pushed; this read is the fallback while the socket is down.
    const timer = setInterval(async () => {
      try {
        queueUpdate(await get(`/api/events/${eventId}/queue`));
      } catch {
        /* the next tick tries again */
      }
    }, 3000);
  });
}

async function main() {
  const live = liveIndicator($("live"));
  if (signedIn()) {
    connect({ rooms: [`event:${eventId}`], onMessage: onFrame, onOpen: resync, onState: live });
  } else {
    $("live").textContent = "Sign in for live updates";
  }
  try {
    event = await get(`/api/events/${eventId}`);
    perf.eventMs = performance.now();
  } catch (err) {
    $("name").textContent = err.status === 404 ? "Event not found" : "Cannot load this event";
    return;
  }
  document.title = `${event.name} · Ticketing`;
  $("name").textContent = event.name;
  $("when").textContent = dateTime(event.starts_at);
  $("venue").textContent = event.venue;
  $("description").textContent = event.description || "";
  if (event.status !== "published") {
    $("notice").innerHTML = `<p class="notice warn">This event is ${esc(event.status)} and not on sale.</p>`;
    return;
  }
  if (event.queue?.enabled) await waitingRoom();
  await openShop();
  if (!signedIn()) setInterval(resync, 3000); // no socket without a session: re-read instead
}

main();
