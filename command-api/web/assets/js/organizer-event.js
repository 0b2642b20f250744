// The organizer's live dashboard: tickets and revenue per minute (a uPlot chart of the
// `sales/timeseries` read), by tier, holds, bookings and the waiting room's figures. Seat
// changes pushed for the event trigger a re-read; a timer re-reads too, since the sales read
// model trails the seat frames.

import uPlot from "../vendor/uplot.esm.js";
import { dateTime, esc, explain, get, header, minorUnits, money, pathId, requireSignIn } from "./api.js";
import { connect, liveIndicator } from "./live.js";

header();
const eventId = pathId();
const $ = (id) => document.getElementById(id);
let event = null;
let plot = null;
let currency = "EUR";

function series(points) {
  // Half a minute of margin on each side keeps the first and last minutes' bars whole.
  // One value per minute from the first sale (or half an hour ago) to now, zeros between.
  const now = Math.floor(Date.now() / 60000) * 60;
  const first = points.length ? Math.floor(new Date(points[0].minute).getTime() / 60000) * 60 : now - 30 * 60;
  const start = Math.min(first, now - 10 * 60);
  const byMinute = new Map(points.map((p) => [Math.floor(new Date(p.minute).getTime() / 60000) * 60, p]));
  const xs = [], tickets = [], revenue = [];
  const scale = 10 ** minorUnits(currency);
  for (let t = start; t <= now; t += 60) {
    const p = byMinute.get(t);
    xs.push(t);
    tickets.push(p ? p.tickets_sold - p.tickets_refunded : 0);
    revenue.push(p ? (p.revenue.amount_minor - p.refunded.amount_minor) / scale : 0);
  }
  return [xs, tickets, revenue];
}

function drawChart(points) {
  const data = series(points);
  const el = $("chart");
  const sold = data[1].reduce((a, b) => a + b, 0);
  el.dataset.ticketsSold = String(sold);
  el.dataset.points = String(points.length);
  el.setAttribute("aria-label", `${sold} tickets sold in the charted minutes`);
  if (plot) {
    plot.setData(data);
    return;
  }
  plot = new uPlot(
    {
      width: Math.max(320, el.clientWidth),
      height: 280,
      scales: { x: { time: true, range: (u, min, max) => [min - 30, max + 30] }, tickets: { range: (u, min, max) => [0, Math.max(4, max * 1.2)] }, revenue: { range: (u, min, max) => [0, Math.max(10, max * 1.2)] } },
      axes: [
        { stroke: "#4b5563" },
        { scale: "tickets", label: "Tickets", stroke: "#4b5563", grid: { stroke: "#eef0f4" } },
        { scale: "revenue", label: `Revenue (${currency})`, side: 1, stroke: "#4b5563", grid: { show: false } },
      ],
      series: [
        {},
        { label: "Tickets", scale: "tickets", stroke: "#4338ca", fill: "rgba(67,56,202,.35)", paths: uPlot.paths.bars({ size: [0.7, 40] }), points: { show: false } },
        { label: `Revenue (${currency})`, scale: "revenue", stroke: "#059669", width: 2, points: { show: false } },
      ],
    },
    data,
    el,
  );
  new ResizeObserver(() => plot.setSize({ width: Math.max(320, el.clientWidth), height: 280 })).observe(el);
}

async function refresh() {
  try {
    const [sales, timeline, queue] = await Promise.all([
      get(`/api/events/${eventId}/sales`),
      get(`/api/events/${eventId}/sales/timeseries`),
      event?.queue?.enabled ? get(`/api/events/${eventId}/queue/stats`).catch(() => null) : null,
    ]);
    currency = sales.revenue.currency;
    $("k-sold").textContent = sales.tickets_sold.toLocaleString("en-GB");
    $("k-revenue").textContent = money(sales.revenue);
    $("k-holds").textContent = String(sales.active_holds);
    $("k-confirmed").textContent = String(sales.bookings.confirmed);
    const names = new Map((event?.tiers || []).map((t) => [t.tier_id, t.name]));
    $("tiers").innerHTML = sales.by_tier.map((t) => `<tr><td>${esc(names.get(t.tier_id) || t.tier_id)}</td><td>${t.sold}</td><td>${esc(money(t.revenue))}</td></tr>`).join("");
    $("bookings").innerHTML = Object.entries(sales.bookings).map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${v}</td></tr>`).join("");
    if (queue) {
      $("queue-card").hidden = false;
      $("queue").innerHTML = [["Waiting", queue.waiting], ["Admitted now", queue.admitted], ["Admitted last minute", queue.admitted_last_minute], ["Rate per minute", queue.admit_per_minute], ["Joined in all", queue.joined_total]]
        .map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${esc(v)}</td></tr>`).join("");
    }
    const w = sales.waitlist;
    if (w && w.waiting + w.offered + w.accepted + w.lapsed > 0) {
      $("waitlist-card").hidden = false;
      $("waitlist").innerHTML = [["Waiting", w.waiting], ["Offers open", w.offered], ["Offers paid", w.accepted], ["Offers lapsed", w.lapsed]]
        .map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${esc(v)}</td></tr>`).join("");
    }
    drawChart(timeline.points);
  } catch (err) {
    if (err.status === 404 || err.status === 403) $("notice").innerHTML = `<p class="notice bad">Only the event's organizer sees its sales.</p>`;
    else if (err.status !== 401) $("notice").innerHTML = `<p class="notice bad">${esc(explain(err))}</p>`;
  }
}

let pending = null;
function soon() {
  clearTimeout(pending);
  pending = setTimeout(refresh, 400);
}

async function main() {
  $("checkin-link").href = `/checkin/${eventId}`;
  $("public-link").href = `/events/${eventId}`;
  try {
    event = await get(`/api/events/${eventId}`);
    $("name").textContent = `${event.name}: live sales`;
    $("when").textContent = dateTime(event.starts_at);
    $("venue").textContent = event.venue;
    document.title = `${event.name} · Live sales`;
  } catch (err) {
    $("notice").innerHTML = `<p class="notice bad">${esc(explain(err))}</p>`;
    return;
  }
  await refresh();
  connect({ rooms: [`event:${eventId}`], onMessage: (f) => f.type === "seat_status" && f.event_id === eventId && soon(), onOpen: soon, onState: liveIndicator($("live")) });
  setInterval(refresh, 3000);
}

if (requireSignIn()) main();
