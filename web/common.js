// Shared by every page: API calls (a 401 sends the browser to the login page), the navigation
// bar, and time formatting. Times are milliseconds since 1970, shown in the browser's zone.
"use strict";

class ApiError extends Error {
  constructor(status, reason) { super(reason); this.status = status; }
}

/** Calls the REST API; returns the parsed JSON (or null for 204). */
async function api(path, { method = "GET", body } = {}) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) { options.headers["content-type"] = "application/json"; options.body = JSON.stringify(body); }
  const response = await fetch(path, options);
  if (response.status === 401 && !location.pathname.endsWith("login.html")) {
    location.href = "/login.html?next=" + encodeURIComponent(location.pathname + location.search);
    throw new ApiError(401, "log in first");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new ApiError(response.status, data.error || response.statusText);
  return data;
}

/** Draws the navigation bar and returns the logged-in user. */
async function page(current) {
  const me = await api("/api/me");
  const nav = document.createElement("nav");
  const links = [["index.html", "Live"], ["camera.html", "Recordings"], ["events.html", "Events"], ["nodes.html", "Nodes & alarms"], ["call.html", "Call"]];
  nav.innerHTML = `<span class="brand">XTransport</span>` +
    links.map(([href, label]) => `<a href="/${href}" class="${href === current ? "current" : ""}">${label}</a>`).join("") +
    `<span class="spacer"></span><span class="who" id="who"></span><button id="logout">Log out</button>`;
  document.body.prepend(nav);
  nav.querySelector("#who").textContent = `${me.name} (${me.role})`;
  nav.querySelector("#logout").onclick = async () => { await api("/api/logout", { method: "POST" }); location.href = "/login.html"; };
  return me;
}

function formatTime(ms, withDate = true) {
  const date = new Date(ms);
  const time = date.toLocaleTimeString([], { hour12: false });
  return withDate ? `${date.toLocaleDateString()} ${time}` : time;
}

function formatDuration(ms) {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${(s / 3600).toFixed(1)} h`;
}

/** A value for <input type="datetime-local"> from ms, and back. */
function toLocalInput(ms) {
  const date = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return date.toISOString().slice(0, 19);
}
function fromLocalInput(text) { return new Date(text).getTime(); }

function escapeHTML(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

/** Synthetic cameras draw their capture time (the low 40 bits of the millisecond clock) as a bar
 *  code along the bottom edge: a start cell then 40 bits, 42 cells across. Reads it off `source`
 *  (a video element, a VideoFrame or a canvas of `width` × `height`) through the one-row canvas
 *  `scratch`. Returns the time, or null where there is no code. */
function readCaptureBarcode(source, width, height, scratch) {
  if (!width || !height) return null;
  const cells = 42, cell = Math.floor(width / cells) & ~1, cellHeight = Math.max(cell >> 1, 4) & ~1;
  if (cell < 2) return null;
  const y = height - (cellHeight >> 1) - 1;
  scratch.width = width;
  scratch.height = 1;
  const context = scratch.getContext("2d", { willReadFrequently: true });
  context.drawImage(source, 0, y, width, 1, 0, 0, width, 1);
  const row = context.getImageData(0, 0, width, 1).data;
  const lit = (index) => {
    let sum = 0, count = 0;
    for (let x = index * cell + (cell >> 2); x < index * cell + (cell >> 2) + (cell >> 1); x++) {
      sum += (row[4 * x] + row[4 * x + 1] + row[4 * x + 2]) / 3;
      count++;
    }
    return sum / count > 128;
  };
  if (!lit(0)) return null;
  let value = 0;
  for (let bit = 0; bit < 40; bit++) value = value * 2 + (lit(bit + 1) ? 1 : 0);
  return value;
}

/** Glass-to-glass samples (ms): `captured` from the bar code, `shownAt` the wall-clock ms the
 *  picture reached the screen. Implausible values (another clock's code) are left out. */
class LatencySamples {
  constructor() { this.values = []; }
  add(captured, shownAt) {
    if (captured === null) return;
    const modulus = 2 ** 40;
    let latency = (shownAt % modulus) - captured;
    if (latency < -modulus / 2) latency += modulus;
    if (latency <= -1000 || latency >= 60000) return;
    this.values.push(latency);
    if (this.values.length > 10000) this.values.splice(0, 5000);
  }
  clear() { this.values = []; }
  /** { samples, p50, p95, max } so far. */
  summary() {
    const sorted = [...this.values].sort((a, b) => a - b);
    const at = (q) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * q))] : null;
    return { samples: sorted.length, p50: at(0.5), p95: at(0.95), max: sorted.length ? sorted[sorted.length - 1] : null };
  }
}
