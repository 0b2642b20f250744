// The organizer's events and the setup of a new one in three steps: details and a venue
// template, a price per section (each section its own tier), publish (optionally with a
// waiting room). Vouchers slot in here once their API exists.

import { FEATURES, Problem, call, dateTime, esc, explain, get, hasRole, header, minorUnits, money, requireSignIn } from "./api.js";
import { newKey } from "./keys.js";

header();
const $ = (id) => document.getElementById(id);
let current = null; // the event being set up

function step(name) {
  for (const s of ["details", "pricing", "publish"]) $(`step-${s}`).hidden = s !== name;
  for (const li of document.querySelectorAll("#steps li")) {
    if (li.dataset.step === name) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  }
}

function problemText(err) {
  if (err instanceof Problem && err.body.errors) return err.body.errors.map((f) => `${f.field}: ${f.message}`).join("; ");
  return explain(err);
}

async function command(path, body) {
  return call("POST", path, { body, headers: { "idempotency-key": newKey() } });
}

async function listMine() {
  const tbody = $("my-events");
  try {
    const page = await get("/api/events?mine=true&per_page=100");
    if (!page.items.length) {
      tbody.innerHTML = `<tr><td colspan="4" class="muted">No events yet: create your first one below.</td></tr>`;
      return;
    }
    tbody.innerHTML = page.items
      .map((e) => {
        const actions =
          e.status === "draft"
            ? `<button type="button" class="secondary" data-continue="${esc(e.event_id)}">Continue setup</button>`
            : `<a href="/organizer/events/${esc(e.event_id)}">Live sales</a> · <a href="/checkin/${esc(e.event_id)}">Check-in</a> · <a href="/events/${esc(e.event_id)}">Public page</a>`;
        return `<tr><td><strong>${esc(e.name)}</strong><br><span class="muted">${esc(e.venue)}</span></td><td>${esc(dateTime(e.starts_at))}</td><td><span class="badge ${esc(e.status)}">${esc(e.status)}</span></td><td>${actions}</td></tr>`;
      })
      .join("");
    for (const b of tbody.querySelectorAll("[data-continue]")) b.addEventListener("click", () => resume(b.dataset.continue));
  } catch (err) {
    tbody.innerHTML = `<tr><td colspan="4">${esc(explain(err))}</td></tr>`;
  }
}

async function resume(eventId) {
  current = await get(`/api/events/${eventId}`);
  if (!current.sections.length) {
    step("details");
    return;
  }
  if (!current.tiers.length) showPricing();
  else showPublish();
  $("create-heading").scrollIntoView({ behavior: "smooth" });
}

async function loadTemplates() {
  const templates = await get("/api/events/templates");
  $("templates").innerHTML = templates
    .map((t) => {
      const places = t.sections.reduce((n, s) => n + (s.kind === "seated" ? s.rows.reduce((m, r) => m + r.seats, 0) : s.capacity), 0);
      return `<option value="${esc(t.template_id)}">${esc(t.name)}, ${places.toLocaleString("en-GB")} places</option>`;
    })
    .join("");
}

function defaultStart() {
  const d = new Date(Date.now() + 30 * 86400000);
  d.setHours(19, 30, 0, 0);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

async function createEvent(e) {
  e.preventDefault();
  const f = e.currentTarget.elements;
  $("details-error").innerHTML = "";
  try {
    const body = { name: f.namedItem("name").value.trim(), venue: f.namedItem("venue").value.trim(), starts_at: new Date(f.namedItem("starts_at").value).toISOString() };
    const description = f.namedItem("description").value.trim();
    if (description) body.description = description;
    const created = await command("/api/events", body);
    const eventId = created.body.event_id;
    const laid = await command(`/api/events/${eventId}/layout`, { template_id: f.namedItem("template_id").value });
    // Read our own write: the catalogue read model waits until it has the layout.
    current = await get(`/api/events/${eventId}`, { minPosition: laid.headers.get("x-event-position") || undefined });
    showPricing();
    listMine();
  } catch (err) {
    if (err.status !== 401) $("details-error").innerHTML = `<p class="notice bad">${esc(problemText(err))}</p>`;
  }
}

function showPricing() {
  $("pricing-event").textContent = current.name;
  $("pricing-rows").innerHTML = current.sections
    .map((s, i) => {
      const places = s.kind === "seated" ? s.rows.reduce((m, r) => m + r.seats, 0) : s.capacity;
      const suggested = [65, 45, 35, 30, 25][Math.min(i, 4)];
      return `<tr><td>${esc(s.name)}</td><td>${places.toLocaleString("en-GB")}</td><td><label class="visually-hidden" for="price-${i}">Price for ${esc(s.name)}</label><input id="price-${i}" data-section="${esc(s.section_id)}" data-name="${esc(s.name)}" type="number" min="0" step="0.01" value="${suggested}.00" required></td></tr>`;
    })
    .join("");
  step("pricing");
}

async function savePricing(e) {
  e.preventDefault();
  const currency = e.currentTarget.elements.namedItem("currency").value;
  const digits = minorUnits(currency);
  const tiers = [...document.querySelectorAll("#pricing-rows input")].map((input) => ({
    tier_id: input.dataset.section,
    name: input.dataset.name,
    price: { amount_minor: Math.round(Number(input.value) * 10 ** digits), currency },
    section_ids: [input.dataset.section],
  }));
  $("pricing-error").innerHTML = "";
  try {
    await command(`/api/events/${current.event_id}/pricing`, { tiers });
    current.tiers = tiers;
    showPublish();
  } catch (err) {
    if (err.status !== 401) $("pricing-error").innerHTML = `<p class="notice bad">${esc(problemText(err))}</p>`;
  }
}

function showPublish() {
  $("publish-event").textContent = `${current.name} (from ${money(current.tiers.map((t) => t.price).sort((a, b) => a.amount_minor - b.amount_minor)[0])})`;
  step("publish");
}

async function publish(e) {
  e.preventDefault();
  const f = e.currentTarget.elements;
  const body = {};
  if (f.namedItem("queue").checked) {
    body.queue = { enabled: true, admit_per_minute: Number(f.namedItem("admit_per_minute").value), admission_minutes: Number(f.namedItem("admission_minutes").value) };
  }
  $("publish-error").innerHTML = "";
  try {
    await command(`/api/events/${current.event_id}/publish`, body);
    location.assign(`/organizer/events/${current.event_id}`);
  } catch (err) {
    if (err.status !== 401) $("publish-error").innerHTML = `<p class="notice bad">${esc(problemText(err))}</p>`;
  }
}

async function main() {
  if (!hasRole("organizer") && !hasRole("admin")) {
    $("role-notice").innerHTML = `<div class="card"><p>Selling tickets needs the organizer role. Ask an administrator to grant it, then sign in again.</p></div>`;
    return;
  }
  $("org").hidden = false;
  $("create-event").elements.namedItem("starts_at").value = defaultStart();
  $("create-event").addEventListener("submit", createEvent);
  $("pricing").addEventListener("submit", savePricing);
  $("publish-form").addEventListener("submit", publish);
  if (FEATURES.vouchers) $("step-publish").dataset.vouchers = "true";
  await Promise.all([listMine(), loadTemplates()]);
}

if (requireSignIn()) main();
