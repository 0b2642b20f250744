// The storefront: published events (name, venue, date, from-price), searchable by name.
// The API lists events page by page; the search filters what has been loaded and loads more
// pages while it finds too little.

import { dateTime, esc, explain, get, header, money } from "./api.js";

header();
const list = document.getElementById("events");
const more = document.getElementById("more");
const search = document.getElementById("search");
let events = [];
let nextPage = 1;

function card(e) {
  return `<li><a class="card event-card" href="/events/${esc(e.event_id)}">
    <span class="date">${esc(dateTime(e.starts_at))}</span>
    <span class="name">${esc(e.name)}</span>
    <span class="muted">${esc(e.venue)}</span>
    <span class="price">${e.min_price ? `from ${esc(money(e.min_price))}` : "Free"}</span>
  </a></li>`;
}

function show() {
  const q = search.value.trim().toLowerCase();
  const shown = q ? events.filter((e) => e.name.toLowerCase().includes(q)) : events;
  list.innerHTML = shown.map(card).join("");
  document.getElementById("events-empty").hidden = shown.length > 0;
  more.hidden = nextPage === null;
}

async function load() {
  if (nextPage === null) return;
  try {
    const page = await get(`/api/events?page=${nextPage}&per_page=100`);
    events = events.concat(page.items);
    nextPage = page.next_page;
  } catch (err) {
    list.insertAdjacentHTML("afterend", `<p class="notice bad">${esc(explain(err))}</p>`);
    nextPage = null;
  }
  list.setAttribute("aria-busy", "false");
  show();
}

search.addEventListener("input", show);
document.getElementById("search-form").addEventListener("submit", (e) => e.preventDefault());
more.addEventListener("click", load);
load();
