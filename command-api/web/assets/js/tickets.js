// My tickets, grouped by event, each with its QR code, a PDF and a transfer button.

import { dateTime, esc, explain, get, header, requireSignIn } from "./api.js";
import { drawCodes, ticketHtml, wireTicketActions } from "./ticketcard.js";

header();

async function main(minPosition) {
  const root = document.getElementById("tickets-root");
  let tickets;
  try {
    tickets = await get("/api/tickets", { minPosition });
  } catch (err) {
    root.innerHTML = `<p class="notice bad">${esc(explain(err))}</p>`;
    return;
  }
  root.setAttribute("aria-busy", "false");
  if (!tickets.length) {
    root.innerHTML = `<div class="card"><p>No tickets yet.</p><p><a class="button" href="/">Find an event</a></p></div>`;
    return;
  }
  const byEvent = new Map();
  for (const t of tickets) byEvent.set(t.event_id, [...(byEvent.get(t.event_id) || []), t]);
  const events = new Map(
    await Promise.all([...byEvent.keys()].map(async (id) => [id, await get(`/api/events/${id}`).catch(() => null)])),
  );
  root.innerHTML = [...byEvent]
    .map(([id, list]) => {
      const e = events.get(id);
      const title = e ? `${esc(e.name)} <span class="muted">· ${esc(dateTime(e.starts_at))} · ${esc(e.venue)}</span>` : "Event";
      return `<section aria-label="${esc(e ? e.name : "Event")}"><h2>${title}</h2><ul class="tickets">${list.map((t) => ticketHtml(t, e)).join("")}</ul></section>`;
    })
    .join("");
  await drawCodes(root, tickets);
  root.dataset.ready = "true";
}

if (requireSignIn()) {
  wireTicketActions(document.getElementById("tickets-root"), (position) => main(position));
  main();
}
