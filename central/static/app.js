// EPIC live monitor: the latest map, device health and latency, kept fresh over the live
// WebSocket, with a plain HTTP poll whenever the socket is down. No libraries: the field has
// no internet. One deployment at a time: ?deployment=NAME, picked in the header where the
// server (epic api) serves several.
"use strict";

const POLL_MS = 5000; // fallback poll while the socket is down
const REFRESH_MS = 30000; // full refresh even while live (late flags, last-seen drift)
const HEALTH_MS = 10000;
const BACKOFF_MAX_MS = 30000;
const CHART_WINDOW_MS = 10 * 60 * 1000;
const RECENT_SHOWN = 12;
const RECENT_KEPT = 200;

const state = {
  deployment: null, // the deployment shown; every path below is under it
  latest: null, // newest map summary seen
  pinned: null, // a summary the user clicked; null = follow live
  devices: new Map(), // id -> DeviceHealth, in the order the service lists them
  maps: new Map(), // "id@version" -> summary, for the recent list and the chart
  socket: null,
  retries: 0,
  pollTimer: null,
  clockOffsetMs: 0, // server clock minus ours, from the Date header
  health: null, // the last /api/health body
  devicesSoon: null, // a pending device refresh after a map event
};

const $ = (id) => document.getElementById(id);

// ---------- time ----------

function serverNowMs() {
  return Date.now() + state.clockOffsetMs;
}

function nsToMs(ns) {
  return ns == null ? null : ns / 1e6;
}

function ago(ms) {
  if (ms == null) return "—";
  const s = Math.max(0, Math.round((serverNowMs() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min ago`;
  return `${Math.floor(h / 24)} d ago`;
}

function fmtMs(v) {
  if (v == null || !Number.isFinite(v)) return "—";
  return v >= 100 ? `${Math.round(v)}` : v.toFixed(1);
}

function pair(a, b) {
  return a == null && b == null ? "—" : `${fmtMs(a)} / ${fmtMs(b)}`;
}

// The page's clock may be off from the centre's in the field; ages use the centre's.
function learnClock(response, sentAt) {
  const date = response.headers.get("date");
  if (!date) return;
  const server = Date.parse(date); // 1 s resolution: correct gross skew only
  if (Number.isNaN(server)) return;
  const offset = server + 500 - (sentAt + Date.now()) / 2;
  state.clockOffsetMs = Math.abs(offset) > 2000 ? offset : 0;
}

// ---------- HTTP ----------

// A path of the deployment shown: "/maps" -> "/api/deployments/NAME/maps".
function api(path) {
  return `/api/deployments/${encodeURIComponent(state.deployment)}${path}`;
}

async function getJSON(url) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), 8000);
  const sentAt = Date.now();
  try {
    const response = await fetch(url, { signal: ctrl.signal, cache: "no-store" });
    learnClock(response, sentAt);
    if (response.status === 404) return null;
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return await response.json();
  } finally {
    clearTimeout(timer);
  }
}

async function refreshMaps() {
  const list = await getJSON(api("/maps?limit=100"));
  if (list) list.maps.forEach(addMap);
  const latest = await getJSON(api("/maps/latest"));
  if (latest) {
    delete latest.velocity;
    addMap(latest);
  }
  if (!state.pinned && state.latest) showMap(state.latest);
  renderRecent();
  drawChart();
}

async function refreshDevices() {
  const body = await getJSON(api("/devices"));
  if (!body) return;
  state.devices.clear();
  body.devices.forEach((d) => state.devices.set(d.id, d));
  renderDevices();
}

async function refreshHealth() {
  const h = await getJSON(api("/health"));
  if (!h) return;
  state.health = h;
  $("deployment").textContent = `${h.deployment} · ${h.model}`;
  const el = $("health");
  el.replaceChildren();
  const broker = document.createElement("span");
  broker.textContent = h.broker_connected ? "broker connected" : "BROKER DISCONNECTED";
  if (!h.broker_connected) broker.className = "bad";
  el.append(
    broker,
    ` · buffer ${h.buffer_depth} · decode p95 ${fmtMs(h.decode_ms_p95)} ms` +
      ` · ${h.maps_stored} ${h.maps_stored === 1 ? "map" : "maps"} stored`,
  );
  if (h.store_ok === false) {
    const s = document.createElement("span");
    s.className = "bad";
    s.textContent = " · DATABASE FAILING";
    el.append(s);
  }
  if (h.status !== "ok") {
    const s = document.createElement("span");
    s.className = "bad";
    s.textContent = ` · ${h.status.toUpperCase()}`;
    el.append(s);
  }
  drawChart();
}

function quietly(promise) {
  promise.catch((err) => console.warn(String(err)));
}

// ---------- maps ----------

const mapKey = (m) => `${m.sample_id}@${m.version}`;
const decodedAt = (m) => nsToMs(m.timings.decode_end_ns);

// Remembers a map; true when it is the newest seen so far.
function addMap(m) {
  state.maps.set(mapKey(m), m);
  if (state.maps.size > RECENT_KEPT) {
    const oldest = [...state.maps.values()].sort((a, b) => decodedAt(a) - decodedAt(b))[0];
    state.maps.delete(mapKey(oldest));
  }
  const newer =
    !state.latest ||
    decodedAt(m) > decodedAt(state.latest) ||
    (m.sample_id === state.latest.sample_id && m.version > state.latest.version);
  if (newer) state.latest = m;
  return newer;
}

function onMapEvent(m) {
  if (addMap(m) && !state.pinned) showMap(m);
  // Counters (latents, delays, rejections, maps stored) change with every sample but send
  // no events: a new map is the moment to fetch them, at most once a second.
  if (!state.devicesSoon) {
    state.devicesSoon = setTimeout(() => {
      state.devicesSoon = null;
      quietly(refreshDevices());
      quietly(refreshHealth());
    }, 1000);
  }
  renderRecent();
  drawChart();
}

// The picture and its facts change together: the new PNG is loaded off-screen first, and
// only then are both swapped, so the caption never names a sample the picture is not.
// What the comparison panel sets a map against: the truth where the source knows it (the
// demo: maps carry an SSIM), else the map stored before it; null when there is neither
// (the first map in the field), so the page never asks for a picture that cannot exist.
function compareAgainst(m) {
  if (m.ssim != null) return "truth";
  const earlier = [...state.maps.values()].some(
    (o) => o.sample_id !== m.sample_id && decodedAt(o) < decodedAt(m),
  );
  return earlier ? "previous" : null;
}

function showMap(m) {
  const img = $("latest-map");
  const id = encodeURIComponent(m.sample_id);
  const src = api(`/maps/${id}.png?version=${m.version}`);
  const against = compareAgainst(m);
  const cmp = against && api(`/maps/${id}/compare.png?version=${m.version}&against=${against}`);
  state.wanted = src;
  if (img.getAttribute("src") === src && $("compare-map").getAttribute("src") === cmp) {
    describeMap(m);
    return;
  }
  // Both pictures load first and change together with the facts beside them.
  let waiting = cmp ? 2 : 1;
  let cmpShown = false;
  const swap = () => {
    if (--waiting > 0 || state.wanted !== src) return; // or a newer map was asked for
    img.src = src;
    showCompare(cmpShown ? cmp : null, against);
    describeMap(m);
  };
  const next = new Image();
  next.onload = swap;
  next.onerror = swap; // the facts still show; the picture's own error shows in the img
  next.src = src;
  if (cmp) {
    const other = new Image();
    other.onload = () => {
      cmpShown = true;
      swap();
    };
    other.onerror = swap;
    other.src = cmp;
  }
}

function showCompare(src, against) {
  const figure = $("compare-figure");
  figure.hidden = !src;
  if (!src) return;
  const img = $("compare-map");
  img.src = src;
  const truth = against === "truth";
  img.alt = truth
    ? "the true map, this map and their difference"
    : "the previous map, this map and what changed";
  img.dataset.against = against;
  $("compare-caption").textContent = truth
    ? "Left to right: the true map (the simulator knows it), this map, and this map minus " +
      "the truth."
    : "Left to right: the map stored before this one, this map, and what changed.";
}

function describeMap(m) {
  const img = $("latest-map");
  img.alt = `velocity map of sample ${m.sample_id}, version ${m.version}`;
  img.hidden = false;
  $("no-map").hidden = true;
  img.dataset.sample = m.sample_id;
  img.dataset.version = String(m.version);
  $("sample-id").textContent = m.sample_id;
  $("map-version").textContent = String(m.version);
  const badge = document.createElement("span");
  badge.className = m.partial ? "badge partial" : "badge ok";
  badge.textContent = m.partial ? "PARTIAL" : "complete";
  $("map-partial").replaceChildren(badge);
  $("map-partial").dataset.partial = String(m.partial);
  $("devices-used").textContent = m.devices_used.join(", ") || "none";
  $("devices-missing").textContent = m.devices_missing.join(", ") || "none";
  $("map-latency").textContent =
    m.timings.end_to_end_ms == null ? "—" : `${fmtMs(m.timings.end_to_end_ms)} ms`;
  $("map-decode").textContent = `${fmtMs(m.timings.decode_ms)} ms`;
  $("map-ssim").textContent = m.ssim == null ? "—" : m.ssim.toFixed(3);
  tickAges();
  renderRecent();
}

function shown() {
  return state.pinned || state.latest;
}

function pin(m) {
  const live = state.latest && mapKey(m) === mapKey(state.latest);
  state.pinned = live ? null : m;
  $("view-mode").dataset.mode = live ? "live" : "pinned";
  $("view-mode").textContent = live ? "following live" : "showing an older map";
  $("follow-live").hidden = live;
  showMap(m);
}

function renderRecent() {
  const list = $("recent-maps");
  const maps = [...state.maps.values()]
    .sort((a, b) => decodedAt(b) - decodedAt(a))
    .slice(0, RECENT_SHOWN);
  const current = shown();
  list.replaceChildren(
    ...maps.map((m) => {
      const li = document.createElement("li");
      li.tabIndex = 0;
      li.dataset.sample = m.sample_id;
      li.dataset.version = String(m.version);
      if (current && mapKey(current) === mapKey(m)) li.className = "shown";
      const id = document.createElement("span");
      id.className = "rid";
      id.textContent = m.version > 1 ? `${m.sample_id} (v${m.version})` : m.sample_id;
      const badge = document.createElement("span");
      badge.className = m.partial ? "badge partial" : "badge ok";
      badge.textContent = m.partial ? "partial" : "ok";
      const age = document.createElement("span");
      age.className = "rage";
      age.dataset.at = String(decodedAt(m));
      age.textContent = ago(decodedAt(m));
      li.append(id, badge, age);
      li.addEventListener("click", () => pin(m));
      li.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") pin(m);
      });
      return li;
    }),
  );
}

// ---------- devices ----------

// The edge's heartbeat (edge/health.py): encode_ms_p50/p95, outbox_depth, outbox_bytes,
// dropped, reconnects, ... Absent until the device's first heartbeat.
function heartbeat(d, key) {
  const value = d.heartbeat ? d.heartbeat[key] : null;
  return value == null ? null : value;
}

function outboxNote(d) {
  if (!d.heartbeat) return "";
  const parts = [];
  if (heartbeat(d, "outbox_bytes") != null) parts.push(`${heartbeat(d, "outbox_bytes")} bytes queued`);
  if (heartbeat(d, "dropped") != null) parts.push(`${heartbeat(d, "dropped")} dropped (outbox full)`);
  if (heartbeat(d, "reconnects") != null) parts.push(`${heartbeat(d, "reconnects")} reconnects`);
  return parts.join("\n");
}

function deviceState(d) {
  if (!d.online) return "offline";
  if (d.late) return "late";
  return "online";
}

function cell(text, title) {
  const td = document.createElement("td");
  td.textContent = text;
  if (title) {
    td.title = title;
    td.className = "has-reasons";
  }
  return td;
}

function renderDevices() {
  const tbody = $("device-table").querySelector("tbody");
  const rows = [...state.devices.values()].map((d) => {
    const st = deviceState(d);
    const tr = document.createElement("tr");
    tr.dataset.device = d.id;
    tr.dataset.state = st;
    if (st !== "online") tr.className = "bad";
    // Offline or late: the centre decodes without waiting for it (liveness-aware assembly).
    const status = cell(
      st.toUpperCase(),
      st === "online" ? "" : "not waited for: maps decode without this device until it is back",
    );
    status.classList.add("state", st);
    if (st !== "online") {
      const note = document.createElement("span");
      note.className = "not-waited";
      note.textContent = "not waited for";
      status.append(document.createElement("br"), note);
    }
    const seen = cell(ago(nsToMs(d.last_seen_ns)));
    seen.dataset.at = String(nsToMs(d.last_seen_ns));
    const reasons = Object.entries(d.rejected || {});
    const rejected = reasons.reduce((sum, [, n]) => sum + n, 0);
    const outbox = heartbeat(d, "outbox_depth");
    tr.append(
      cell(d.id),
      status,
      seen,
      cell(String(d.latents_received)),
      cell(pair(d.arrival_delay_ms_p50, d.arrival_delay_ms_p95)),
      cell(pair(heartbeat(d, "encode_ms_p50"), heartbeat(d, "encode_ms_p95"))),
      cell(outbox == null ? "—" : String(outbox), outboxNote(d)),
      cell(String(rejected), reasons.map(([r, n]) => `${r}: ${n}`).join("\n")),
      cell(`${d.late_latents} / ${d.duplicates}`),
    );
    return tr;
  });
  tbody.replaceChildren(...rows);
  const down = [...state.devices.values()].filter((d) => deviceState(d) !== "online").length;
  $("device-summary").textContent = `${state.devices.size - down} of ${state.devices.size} healthy`;
}

function onDeviceEvent(d) {
  state.devices.set(d.id, d);
  renderDevices();
}

// ---------- latency chart ----------

function drawChart() {
  const canvas = $("latency-chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (width === 0) return;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = "12px system-ui, sans-serif";

  const now = serverNowMs();
  const points = [...state.maps.values()]
    .filter((m) => m.timings.end_to_end_ms != null && now - decodedAt(m) <= CHART_WINDOW_MS)
    .map((m) => ({ t: decodedAt(m), v: m.timings.end_to_end_ms, partial: m.partial }))
    .sort((a, b) => a.t - b.t);
  const stats = $("latency-stats");
  if (points.length === 0) {
    ctx.fillStyle = "#4a4a4a";
    ctx.fillText("no maps with a latency in the last 10 minutes", 12, height / 2);
    stats.textContent = "";
    return;
  }
  const values = points.map((p) => p.v).sort((a, b) => a - b);
  const p95 = values[Math.min(values.length - 1, Math.floor(0.95 * values.length))];
  // The time axis spans the data (at least a minute, at most 10), not always 10 minutes.
  const span = Math.min(CHART_WINDOW_MS, Math.max(60000, (now - points[0].t) * 1.05));
  stats.textContent =
    `last ${fmtMs(points[points.length - 1].v)} ms · p95 ${fmtMs(p95)} ms · ` +
    `${points.length} maps in ${fmtSpan(span)} · red: partial`;

  const left = 64;
  const right = 10;
  const top = 10;
  const bottom = 22;
  // The value axis fits the latencies; the deadline T is drawn when it falls inside, and
  // named at the top otherwise (it would squash a 80 ms chart under a 2,000 ms line).
  const deadline = state.health && state.health.deadline_ms;
  const top_v = niceCeil(values[values.length - 1] * 1.15);
  const x = (t) => left + ((t - (now - span)) / span) * (width - left - right);
  const y = (v) => top + (1 - v / top_v) * (height - top - bottom);

  ctx.strokeStyle = "#c8c8c8";
  ctx.fillStyle = "#333333";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const v = (top_v * i) / 4;
    ctx.beginPath();
    ctx.moveTo(left, y(v));
    ctx.lineTo(width - right, y(v));
    ctx.stroke();
    ctx.fillText(`${fmtMs(v)} ms`, left - 6, y(v));
  }
  ctx.textBaseline = "top";
  const step = tickStep(span);
  for (let ago = Math.floor(span / step) * step; ago >= 0; ago -= step) {
    // The end labels align inward so neither is clipped by the canvas edge.
    ctx.textAlign = ago === 0 ? "right" : x(now - ago) < left + 30 ? "left" : "center";
    ctx.fillText(ago === 0 ? "now" : `-${fmtSpan(ago)}`, x(now - ago), height - bottom + 6);
  }

  if (deadline && deadline > top_v) {
    ctx.fillStyle = "#b00020";
    ctx.textAlign = "right";
    ctx.fillText(`deadline ${Math.round(deadline)} ms, above`, width - right - 2, top);
  }
  if (deadline && deadline <= top_v) {
    ctx.strokeStyle = "#b00020";
    ctx.setLineDash([6, 4]);
    ctx.beginPath();
    ctx.moveTo(left, y(deadline));
    ctx.lineTo(width - right, y(deadline));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = "#b00020";
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    ctx.fillText(`deadline ${Math.round(deadline)} ms`, left + 4, y(deadline) - 2);
  }

  ctx.strokeStyle = "#0b4f8a";
  ctx.lineWidth = 2;
  ctx.beginPath();
  points.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.v)) : ctx.moveTo(x(p.t), y(p.v))));
  ctx.stroke();
  for (const p of points) {
    ctx.fillStyle = p.partial ? "#b00020" : "#0b4f8a";
    ctx.beginPath();
    ctx.arc(x(p.t), y(p.v), p.partial ? 4 : 3, 0, 2 * Math.PI);
    ctx.fill();
  }
}

// "45 s", "2 min", "10 min".
function fmtSpan(ms) {
  return ms < 90000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60000)} min`;
}

// A tick every 10 s, 15 s, 30 s, 1, 2 or 5 minutes: about five along the axis.
function tickStep(span) {
  for (const s of [10, 15, 30, 60, 120, 300]) if (span / (s * 1000) <= 6) return s * 1000;
  return 300000;
}

function niceCeil(v) {
  if (!(v > 0)) return 1;
  const base = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * base >= v) return step * base;
  return 10 * base;
}

// ---------- live socket, with reconnect and a poll while it is down ----------

function setConn(st, text) {
  const el = $("conn-state");
  el.dataset.state = st;
  el.textContent = text;
}

function startPolling() {
  if (state.pollTimer) return;
  const poll = () => {
    quietly(refreshMaps());
    quietly(refreshDevices());
  };
  poll();
  state.pollTimer = setInterval(poll, POLL_MS);
}

function stopPolling() {
  clearInterval(state.pollTimer);
  state.pollTimer = null;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const where = `/ws/deployments/${encodeURIComponent(state.deployment)}/live`;
  const socket = new WebSocket(`${scheme}//${location.host}${where}`);
  state.socket = socket;
  socket.onopen = () => {
    state.retries = 0;
    stopPolling();
    setConn("live", "live");
  };
  socket.onmessage = (msg) => {
    let event;
    try {
      event = JSON.parse(msg.data);
    } catch {
      console.warn("live feed: not JSON", msg.data);
      return;
    }
    if (event.type === "map") onMapEvent(event.map);
    else if (event.type === "device") onDeviceEvent(event.device);
  };
  socket.onclose = (ev) => {
    state.socket = null;
    const delay = Math.min(BACKOFF_MAX_MS, 1000 * 2 ** state.retries) * (0.8 + 0.4 * Math.random());
    state.retries += 1;
    const why = ev.reason ? ` (${ev.reason})` : "";
    setConn("polling", `disconnected${why}; polling, retry in ${Math.round(delay / 1000)} s`);
    startPolling();
    setTimeout(() => {
      setConn("reconnecting", "reconnecting…");
      connect();
    }, delay);
  };
}

// ---------- ticking ----------

function tickAges() {
  const m = shown();
  $("map-age").textContent = m ? ago(decodedAt(m)) : "—";
  document.querySelectorAll("[data-at]").forEach((el) => {
    const at = Number(el.dataset.at);
    el.textContent = Number.isFinite(at) && at > 0 ? ago(at) : "—";
  });
}

// ---------- which deployment ----------

function describeDeployment(d) {
  const maps = `${d.maps_stored} ${d.maps_stored === 1 ? "map" : "maps"}`;
  return `${d.deployment} · ${d.status} · ${maps} · ${d.devices_online}/${d.devices} devices`;
}

// The picker lists every deployment served, with its state; it shows only where there are
// several (a centre serves its own). Picking one reloads the page for it.
async function refreshDeployments() {
  const body = await getJSON("/api/deployments");
  const list = body ? body.deployments : [];
  const picker = $("deployment-picker");
  picker.replaceChildren(
    ...list.map((d) => {
      const option = document.createElement("option");
      option.value = d.deployment;
      option.textContent = describeDeployment(d);
      option.selected = d.deployment === state.deployment;
      if (d.status !== "ok") option.className = "bad";
      return option;
    }),
  );
  picker.hidden = list.length < 2;
  return list.map((d) => d.deployment);
}

async function chooseDeployment() {
  const asked = new URLSearchParams(location.search).get("deployment");
  for (;;) {
    let names = [];
    try {
      names = await refreshDeployments();
    } catch (err) {
      console.warn(err);
    }
    if (names.length) {
      state.deployment = names.includes(asked) ? asked : names[0];
      if (asked && asked !== state.deployment) {
        $("health").textContent = `no deployment ${asked} here; showing ${state.deployment}`;
      }
      $("deployment-picker").value = state.deployment;
      return;
    }
    setConn("polling", "no deployment yet: waiting for a centre to report");
    await new Promise((done) => setTimeout(done, POLL_MS));
  }
}

function pickDeployment(event) {
  const params = new URLSearchParams(location.search);
  params.set("deployment", event.target.value);
  location.search = params.toString();
}

async function start() {
  $("deployment-picker").addEventListener("change", pickDeployment);
  await chooseDeployment();
  $("follow-live").addEventListener("click", () => state.latest && pin(state.latest));
  quietly(refreshHealth());
  quietly(refreshMaps());
  quietly(refreshDevices());
  connect();
  setInterval(tickAges, 1000);
  setInterval(drawChart, 5000);
  setInterval(() => {
    quietly(refreshHealth());
    quietly(refreshDeployments());
  }, HEALTH_MS);
  setInterval(() => {
    quietly(refreshDevices());
    quietly(refreshMaps());
  }, REFRESH_MS);
  window.addEventListener("resize", drawChart);
}

document.addEventListener("DOMContentLoaded", start);
