// The seat map: one focusable element per seat (`data-seat-id`, `data-status`, an
// `aria-label` naming row, seat, state and price), laid out row by row per section as an ARIA
// grid, plus a quantity control per general-admission section (`data-section-id`,
// `data-available`). Built as one HTML string per section and inserted once, so the 15,200
// seats of the arena template appear in one layout pass; live changes touch single elements
// through an index by seat id.
//
// Keyboard: Tab reaches each section's grid (one seat per grid is in the tab order), the arrow
// keys move between seats, Home/End to the row's ends, Enter or Space selects.

import { esc, money } from "./api.js";

const STATE_WORDS = { available: "available", held: "held by another buyer", sold: "sold", selected: "selected" };

export class SeatMap {
  /**
   * `event` is the event detail (sections, tiers); `onChange()` runs after the selection
   * changes; `maxPlaces` bounds seats plus GA places.
   */
  constructor(container, event, { onChange, maxPlaces = 10, interactive = true } = {}) {
    this.container = container;
    this.event = event;
    this.onChange = onChange || (() => {});
    this.maxPlaces = maxPlaces;
    this.interactive = interactive;
    this.priceOf = new Map();
    for (const tier of event.tiers || []) for (const s of tier.section_ids) this.priceOf.set(s, tier.price);
    this.seats = new Map(); // seat id → element
    this.status = new Map(); // seat id → server status (available, held, sold)
    this.selected = new Set();
    this.ga = new Map(); // section id → {input, available, quantity}
    this.position = 0; // newest seat_status position applied
  }

  get seatCount() {
    return this.event.sections.filter((s) => s.kind === "seated").reduce((n, s) => n + s.rows.reduce((m, r) => m + r.seats, 0), 0);
  }

  /** Renders every section with the given statuses (seat id → status). */
  render(statuses = new Map()) {
    const dense = this.seatCount > 3000;
    this.container.classList.toggle("dense", dense);
    const parts = [];
    if (this.event.sections.length > 2) parts.push(this.#overviewHtml());
    for (const section of this.event.sections) {
      parts.push(section.kind === "seated" ? this.#seatedHtml(section, statuses) : this.#gaHtml(section));
    }
    this.container.innerHTML = parts.join("");
    this.seats.clear();
    for (const el of this.container.querySelectorAll("[data-seat-id]")) this.seats.set(el.dataset.seatId, el);
    for (const [id, el] of this.seats) this.status.set(id, el.dataset.status === "selected" ? "available" : el.dataset.status);
    for (const el of this.container.querySelectorAll("[data-section-id]")) {
      const input = el.querySelector("input");
      this.ga.set(el.dataset.sectionId, { el, input, available: Number(el.dataset.available), quantity: 0 });
    }
    if (this.interactive) this.#wire();
  }

  /** Links to each section with its free places, for large venues. */
  #overviewHtml() {
    const items = this.event.sections.map((section) => {
      const capacity = section.kind === "seated" ? section.rows.reduce((n, r) => n + r.seats, 0) : section.capacity;
      const price = this.priceOf.get(section.section_id);
      return `<li><a href="#h-${esc(section.section_id)}"><strong>${esc(section.name)}</strong><span><span data-available-of="${esc(section.section_id)}">${capacity}</span> free${price ? ` · ${esc(money(price))}` : ""}</span></a></li>`;
    });
    return `<nav class="overview" aria-label="Sections"><ul>${items.join("")}</ul></nav>`;
  }

  #label(section, row, number, status) {
    return `${section.name}, row ${row}, seat ${number}, ${STATE_WORDS[status]}${this.#priceText(section.section_id)}`;
  }

  /** ", €45.00" for a priced section (formatted once per section, not once per seat). */
  #priceText(sectionId) {
    this.priceTexts ??= new Map();
    let text = this.priceTexts.get(sectionId);
    if (text === undefined) {
      const price = this.priceOf.get(sectionId);
      text = price ? `, ${money(price)}` : "";
      this.priceTexts.set(sectionId, text);
    }
    return text;
  }

  #seatedHtml(section, statuses) {
    const price = this.priceOf.get(section.section_id);
    const capacity = section.rows.reduce((n, r) => n + r.seats, 0);
    const out = [
      `<section class="section" aria-labelledby="h-${esc(section.section_id)}">`,
      `<div class="section-head"><h2 id="h-${esc(section.section_id)}">${esc(section.name)}</h2>`,
      `<span class="meta"><span data-available-of="${esc(section.section_id)}">${capacity}</span> of ${capacity} free${price ? ` · ${esc(money(price))}` : ""}</span></div>`,
      `<div class="seats" role="grid" aria-label="${esc(section.name)} seats">`,
    ];
    let first = true;
    for (const row of section.rows) {
      out.push(`<div class="seat-row" role="row"><span class="rl" role="rowheader">${esc(row.row)}</span>`);
      for (let n = 1; n <= row.seats; n++) {
        const id = `${section.section_id}:${row.row}:${n}`;
        let status = statuses.get(id) || "available";
        if (status === "available" && this.selected.has(id)) status = "selected";
        out.push(
          `<span class="s" role="gridcell" tabindex="${first ? 0 : -1}" data-seat-id="${esc(id)}" data-status="${status}" aria-selected="${status === "selected"}"${status === "held" || status === "sold" ? ' aria-disabled="true"' : ""} aria-label="${esc(this.#label(section, row.row, n, status))}"></span>`,
        );
        first = false;
      }
      out.push("</div>");
    }
    out.push("</div></section>");
    return out.join("");
  }

  #gaHtml(section) {
    const price = this.priceOf.get(section.section_id);
    const id = esc(section.section_id);
    return `<section class="section ga" aria-labelledby="h-${id}" data-section-id="${id}" data-available="${section.capacity}">
      <div class="section-head"><h2 id="h-${id}">${esc(section.name)}</h2><span class="meta">Standing${price ? ` · ${esc(money(price))}` : ""}</span></div>
      <div class="bar" aria-hidden="true"><span></span></div>
      <p class="muted"><span data-available-of="${id}">${section.capacity}</span> of ${section.capacity} places free</p>
      <label>Places<span class="visually-hidden"> in ${esc(section.name)}</span><input type="number" min="0" max="10" value="0" inputmode="numeric" ${this.interactive ? "" : "disabled"}></label>
    </section>`;
  }

  #wire() {
    this.container.addEventListener("click", (e) => {
      const el = e.target.closest("[data-seat-id]");
      if (el) this.toggle(el.dataset.seatId, e);
    });
    this.container.addEventListener("keydown", (e) => this.#key(e));
    this.container.addEventListener("focusin", (e) => {
      const el = e.target.closest("[data-seat-id]");
      if (!el) return;
      // Roving tab stop: the focused seat becomes its grid's one seat in the tab order.
      const grid = el.closest('[role="grid"]');
      const current = grid.querySelector('[tabindex="0"]');
      if (current && current !== el) current.tabIndex = -1;
      el.tabIndex = 0;
    });
    for (const [sectionId, ga] of this.ga) {
      ga.input.addEventListener("input", () => {
        const wanted = Math.max(0, Math.floor(Number(ga.input.value) || 0));
        const room = this.maxPlaces - this.places + ga.quantity;
        ga.quantity = Math.min(wanted, room, ga.available);
        if (String(ga.quantity) !== ga.input.value) ga.input.value = String(ga.quantity);
        this.onChange(sectionId);
      });
    }
  }

  #key(e) {
    const el = e.target.closest("[data-seat-id]");
    if (!el) return;
    const row = el.parentElement;
    const cells = () => [...row.querySelectorAll("[data-seat-id]")];
    let next = null;
    switch (e.key) {
      case "ArrowRight": next = el.nextElementSibling; break;
      case "ArrowLeft": next = el.previousElementSibling?.matches("[data-seat-id]") ? el.previousElementSibling : null; break;
      case "Home": next = cells()[0]; break;
      case "End": next = cells().at(-1); break;
      case "ArrowUp":
      case "ArrowDown": {
        const other = e.key === "ArrowUp" ? row.previousElementSibling : row.nextElementSibling;
        if (other) {
          const index = cells().indexOf(el);
          const there = [...other.querySelectorAll("[data-seat-id]")];
          next = there[Math.min(index, there.length - 1)];
        }
        break;
      }
      case "Enter":
      case " ":
        e.preventDefault();
        this.toggle(el.dataset.seatId, e);
        return;
      default:
        return;
    }
    e.preventDefault();
    if (next) next.focus();
  }

  get places() {
    let n = this.selected.size;
    for (const ga of this.ga.values()) n += ga.quantity;
    return n;
  }

  #paint(id) {
    const el = this.seats.get(id);
    if (!el) return;
    const server = this.status.get(id) || "available";
    const shown = server === "available" && this.selected.has(id) ? "selected" : server;
    if (el.dataset.status === shown) return;
    el.dataset.status = shown;
    el.setAttribute("aria-selected", String(shown === "selected"));
    if (shown === "held" || shown === "sold") el.setAttribute("aria-disabled", "true");
    else el.removeAttribute("aria-disabled");
    const [sectionId, row, number] = id.split(":");
    const section = this.event.sections.find((s) => s.section_id === sectionId);
    el.setAttribute("aria-label", this.#label(section, row, number, shown));
  }

  /** Selects or releases a seat; refuses seats that are taken and selections over the limit. */
  toggle(id, event) {
    const status = this.status.get(id);
    if (status !== "available") return;
    if (this.selected.has(id)) this.selected.delete(id);
    else if (this.places >= this.maxPlaces) {
      this.onLimit?.();
      return;
    } else this.selected.add(id);
    this.#paint(id);
    this.onChange(id, event);
  }

  /** Selects seats (restoring a saved selection) that are still available. */
  restore(ids, gaQuantities = {}) {
    for (const id of ids) if (this.status.get(id) === "available" && this.places < this.maxPlaces) {
      this.selected.add(id);
      this.#paint(id);
    }
    for (const [sectionId, q] of Object.entries(gaQuantities)) {
      const ga = this.ga.get(sectionId);
      if (!ga) continue;
      ga.quantity = Math.min(q, ga.available, this.maxPlaces - this.places);
      ga.input.value = String(ga.quantity);
    }
    this.onChange();
  }

  clearSelection() {
    const ids = [...this.selected];
    this.selected.clear();
    ids.forEach((id) => this.#paint(id));
    for (const ga of this.ga.values()) {
      ga.quantity = 0;
      ga.input.value = "0";
    }
    this.onChange();
  }

  /** Sets a seat's server status; returns true when a selected seat was lost. */
  setStatus(id, status) {
    if (!this.seats.has(id)) return false;
    this.status.set(id, status);
    let lost = false;
    if (status !== "available" && this.selected.has(id)) {
      this.selected.delete(id);
      lost = true;
    }
    this.#paint(id);
    return lost;
  }

  setSectionAvailable(sectionId, available) {
    for (const el of this.container.querySelectorAll(`[data-available-of="${CSS.escape(sectionId)}"]`)) el.textContent = String(available);
    const ga = this.ga.get(sectionId);
    if (ga) {
      ga.available = available;
      ga.el.dataset.available = String(available);
      const section = this.event.sections.find((s) => s.section_id === sectionId);
      ga.el.querySelector(".bar > span").style.width = `${Math.round((100 * available) / Math.max(1, section.capacity))}%`;
      if (ga.quantity > available) {
        ga.quantity = available;
        ga.input.value = String(available);
      }
    }
  }

  /** Applies a whole availability read (the resynchronisation after every (re)connect). */
  applyAvailability(availability) {
    const lost = [];
    for (const section of availability.sections) {
      this.setSectionAvailable(section.section_id, section.available);
      for (const seat of section.seats || []) if (this.setStatus(seat.seat_id, seat.status)) lost.push(seat.seat_id);
    }
    return lost;
  }

  /**
   * Applies a `seat_status` frame. Frames are applied in arrival order, not skipped by
   * `position`: one seat's changes come from one section stream, so they arrive in order,
   * while the relay's order across sections is not global-position order (a frame with a
   * lower position can carry newer changes of another section).
   */
  applyFrame(frame) {
    if (typeof frame.position === "number") this.position = Math.max(this.position, frame.position);
    const lost = [];
    for (const c of frame.changes || []) if (this.setStatus(c.seat_id, c.status)) lost.push(c.seat_id);
    for (const s of frame.sections || []) this.setSectionAvailable(s.section_id, s.available);
    return lost;
  }

  /** The selection as a booking body's parts, with prices. */
  selection() {
    const seats = [...this.selected];
    const generalAdmission = [...this.ga].filter(([, ga]) => ga.quantity > 0).map(([section_id, ga]) => ({ section_id, quantity: ga.quantity }));
    const lines = seats.map((id) => ({ id, price: this.priceOf.get(id.split(":")[0]) }));
    for (const ga of generalAdmission) {
      const section = this.event.sections.find((s) => s.section_id === ga.section_id);
      lines.push({ id: ga.section_id, name: section.name, quantity: ga.quantity, price: this.priceOf.get(ga.section_id) });
    }
    return { seats, generalAdmission, lines };
  }
}
