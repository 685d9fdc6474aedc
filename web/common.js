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
