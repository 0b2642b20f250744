// Ticket cards with their QR codes: the code is drawn by the server (`POST /api/tickets/qr`,
// the `qrcode` crate) and shown as an image; the code itself is printed under it
// (`[data-ticket-code]`, one per ticket) for typing at the door.

import { FEATURES, call, esc, explain, seatParts, toast } from "./api.js";

export function placeName(ticket, event) {
  const section = event?.sections?.find((s) => s.section_id === ticket.section_id);
  const sectionName = section ? section.name : ticket.section_id;
  if (!ticket.seat_id) return { title: sectionName, detail: "Standing" };
  const { row, number } = seatParts(ticket.seat_id);
  return { title: `Row ${row} · Seat ${number}`, detail: sectionName };
}

const STATUS = { valid: "Valid", checked_in: "Checked in", void: "Void" };

export function ticketHtml(ticket, event) {
  const place = placeName(ticket, event);
  return `<li class="card ticket" data-ticket-id="${esc(ticket.ticket_id)}">
    <span class="badge ${esc(ticket.status)}">${esc(STATUS[ticket.status] || ticket.status)}</span>
    <div class="qr"><img alt="QR code of the ticket for ${esc(place.title)}, ${esc(place.detail)}" width="168" height="168" hidden></div>
    <div class="seat">${esc(place.title)}</div>
    <div class="muted">${esc(place.detail)}${event ? ` · ${esc(event.name)}` : ""}</div>
    <code data-ticket-code="${esc(ticket.code)}">${esc(ticket.code)}</code>
    ${FEATURES.ticketPdf ? `<button type="button" class="secondary" data-pdf="${esc(ticket.ticket_id)}" aria-label="PDF of the ticket for ${esc(place.title)}">PDF</button>` : ""}
    ${FEATURES.transfers && ticket.status === "valid" ? `<button type="button" class="secondary" data-transfer="${esc(ticket.ticket_id)}" aria-label="Transfer the ticket for ${esc(place.title)}">Transfer</button>` : ""}
  </li>`;
}

/** Fills each card's QR image; returns when all are drawn. */
export async function drawCodes(listEl, tickets) {
  await Promise.all(
    tickets.map(async (ticket) => {
      const img = listEl.querySelector(`[data-ticket-id="${CSS.escape(ticket.ticket_id)}"] img`);
      if (!img) return;
      try {
        const { body } = await call("POST", "/api/tickets/qr", { body: { event_id: ticket.event_id, code: ticket.code }, as: "blob" });
        img.src = URL.createObjectURL(body);
        img.hidden = false;
      } catch {
        /* the printed code still works at the door */
      }
    }),
  );
}

/** Wires the cards' PDF and Transfer buttons; `onTransferred(position)` runs after a transfer. */
export function wireTicketActions(listEl, onTransferred) {
  listEl.addEventListener("click", async (e) => {
    const pdf = e.target.closest("[data-pdf]");
    const transfer = e.target.closest("[data-transfer]");
    try {
      if (pdf) {
        const { body } = await call("GET", `/api/tickets/${pdf.dataset.pdf}/pdf`, { as: "blob" });
        const a = document.createElement("a");
        a.href = URL.createObjectURL(body);
        a.download = `ticket-${pdf.dataset.pdf}.pdf`;
        a.click();
      } else if (transfer) {
        const email = prompt("Transfer this ticket to the registered user with the email:");
        if (!email) return;
        const { headers } = await call("POST", `/api/tickets/${transfer.dataset.transfer}/transfer`, { body: { email } });
        toast("Ticket transferred: its old code is no longer valid.");
        onTransferred(headers.get("x-event-position"));
      }
    } catch (err) {
      toast(explain(err));
    }
  });
}
