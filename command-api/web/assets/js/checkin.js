// The door: a code typed (Enter submits) or read by the camera where the browser offers
// BarcodeDetector, answered in large by `[data-checkin-result]`: valid, already checked in
// (with the time of the first scan), void or invalid.

import { Problem, call, dateTime, esc, explain, get, header, pathId, requireSignIn, seatParts, timeOnly } from "./api.js";
import { newKey } from "./keys.js";

header();
const eventId = pathId();
const $ = (id) => document.getElementById(id);
let event = null;
const history = [];

function where(answer) {
  if (!answer.seat_id) {
    const section = event?.sections.find((s) => s.section_id === answer.section_id);
    return section ? section.name : answer.section_id;
  }
  const { section, row, number } = seatParts(answer.seat_id);
  const name = event?.sections.find((s) => s.section_id === section)?.name || section;
  return `${name}, row ${row}, seat ${number}`;
}

function show(result, headline, detail) {
  const el = $("result");
  el.dataset.checkinResult = result;
  el.innerHTML = `${esc(headline)}${detail ? `<small>${esc(detail)}</small>` : ""}`;
  history.unshift({ result, headline, detail, at: new Date().toISOString() });
  history.length = Math.min(history.length, 12);
  $("scans").innerHTML = history.map((h) => `<li><span>${esc(h.headline)}${h.detail ? ` · ${esc(h.detail)}` : ""}</span><span class="muted">${esc(timeOnly(h.at))}</span></li>`).join("");
}

async function checkIn(code) {
  code = code.trim();
  if (!code) return;
  try {
    const { body } = await call("POST", "/api/checkin", { body: { event_id: eventId, code }, headers: { "idempotency-key": newKey() } });
    show("valid", "Valid", where(body));
  } catch (err) {
    if (!(err instanceof Problem)) show("invalid", "No answer", explain(err));
    else if (err.status === 409 && err.body.checked_in_at) show("already_checked_in", "Already checked in", `at ${timeOnly(err.body.checked_in_at)}`);
    else if (err.status === 409) show("void", "Void ticket", "This ticket was cancelled or refunded");
    else if (err.status === 422 || err.status === 400) show("invalid", "Invalid code", "Not a ticket for this event");
    else if (err.status === 403) show("invalid", "Not allowed", "Check-in needs the staff role or this event's organizer");
    else if (err.status !== 401) show("invalid", "Error", explain(err));
  }
}

async function camera() {
  const video = $("video");
  const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
  video.srcObject = stream;
  video.hidden = false;
  await video.play();
  let last = "";
  const scan = async () => {
    try {
      const [found] = await detector.detect(video);
      if (found && found.rawValue !== last) {
        last = found.rawValue;
        await checkIn(found.rawValue);
        setTimeout(() => (last = ""), 3000);
      }
    } catch {
      /* a frame that could not be read */
    }
    requestAnimationFrame(scan);
  };
  scan();
}

async function main() {
  try {
    event = await get(`/api/events/${eventId}`);
    $("name").textContent = event.name;
    $("when").textContent = `Check-in · ${dateTime(event.starts_at)}`;
    $("venue").textContent = event.venue;
    document.title = `Check-in · ${event.name}`;
  } catch {
    /* check-in still works; names are for the answer's detail */
  }
  $("checkin").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("code");
    await checkIn(input.value);
    input.value = "";
    input.focus();
  });
  if ("BarcodeDetector" in window && navigator.mediaDevices?.getUserMedia) {
    $("camera-box").hidden = false;
    $("camera").addEventListener("click", () => camera().catch((err) => show("invalid", "Camera unavailable", String(err.message || err))));
  }
}

if (requireSignIn()) main();
