// The emulator's dashboard: plain DOM, no framework, no build step, nothing from the
// internet. It reads the API and the control plane with the key it is given, and polls
// (every POLL_MS, only while the tab is visible) instead of holding a stream open.
// Every call carries X-Livepeer-Emulator-Dashboard, so the server keeps it out of the
// request journal and out of a scenario's HTTP faults. Data is only ever put into the
// page as text (textContent), never as HTML.
"use strict";

const POLL_MS = 1000;
const PAGE_SIZE = 50;
const KEY_STORAGE = "livepeer-emulator-dashboard-key";
const TRIGGER_EVENTS = [
  "asset.created", "asset.updated", "asset.ready", "asset.failed", "asset.deleted",
  "task.spawned", "task.updated", "task.completed", "task.failed",
];

const state = {
  key: sessionStorage.getItem(KEY_STORAGE) || "",
  tenants: [], // [{label, bearer, tenant?}]
  bearer: null, // the selected tenant's key; null: none selected
  everyone: false, // the caller may list every tenant (admin key, or an open server)
  tab: "assets",
  offset: 0,
  total: null,
  assetId: null,
  playerSource: null,
  deleteArmed: false,
  requestId: null,
  ticks: 0,
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(path, { method = "GET", body, bearer = state.bearer } = {}) {
  const headers = { "X-Livepeer-Emulator-Dashboard": "1" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!response.ok) {
    const message = data && data.errors ? data.errors.join("; ") : `${response.status}`;
    throw new ApiError(response.status, message);
  }
  return { data, headers: response.headers };
}

// What went wrong: the last poll's failure (cleared by the next good poll) and the last
// action's (kept until the next action, so a refused click stays explained).
const problems = { poll: null, action: null };

function showError(err, slot = "poll") {
  problems[slot] = err ? (err instanceof ApiError ? `${err.status}: ${err.message}` : String(err)) : null;
  const box = $("error");
  const text = [problems.action, problems.poll].filter(Boolean).join(" · ");
  box.hidden = !text;
  box.textContent = text;
}

// -- small formatting helpers ---------------------------------------------------------

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.append(cell);
    else td.textContent = cell === undefined || cell === null ? "" : String(cell);
    tr.append(td);
  }
  return tr;
}

function fill(tbody, rows, empty, columns) {
  tbody.replaceChildren(...rows);
  if (!rows.length) {
    const td = el("td", empty, { colspan: String(columns) });
    const tr = document.createElement("tr");
    tr.append(td);
    tbody.append(tr);
  }
}

function time(ms) {
  return typeof ms === "number" ? new Date(ms).toISOString().replace("T", " ").replace("Z", " UTC") : "";
}

function bytes(n) {
  if (typeof n !== "number") return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function millis(ms) {
  // The journal's durationMs: wall-clock time the server took to answer.
  if (typeof ms !== "number") return "";
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

function seconds(s) {
  return typeof s === "number" ? `${s.toFixed(1)} s` : "";
}

function shortKey(key) {
  return key.length > 14 ? `${key.slice(0, 6)}…${key.slice(-4)}` : key;
}

// Secrets a body may hold: upload tokens (in URLs and queries), shared secrets, JWTs,
// access keys, signing keys' private halves, signatures.
const SECRET_NAME = /^(?!.*tokenname)(?=.*(secret|token|jwt|password|accesskey|privatekey|signature|authorization))/i;
const SECRET_IN_URL = /([?&](?:token|jwt|accessKey)=)[^&\s"'<>]+/gi;
const SECRET_IN_TEXT = /("[^"]*(?:secret|token|jwt|password|accesskey|privatekey|signature)[^"]*"\s*:\s*)"(?:[^"\\]|\\.)*"/gi;
const MASK = "••••••";

function mask(value, name = "") {
  if (typeof value === "string") {
    return SECRET_NAME.test(name) && value ? MASK : value.replace(SECRET_IN_URL, `$1${MASK}`);
  }
  if (Array.isArray(value)) return value.map((item) => mask(item, name));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mask(v, k)]));
  }
  return value;
}

function maskText(text) {
  if (typeof text !== "string") return JSON.stringify(mask(text), null, 2);
  try {
    return JSON.stringify(mask(JSON.parse(text)), null, 2);
  } catch {
    // Not JSON, or cut short by the journal: mask what can be recognised.
    return text.replace(SECRET_IN_TEXT, `$1"${MASK}"`).replace(SECRET_IN_URL, `$1${MASK}`);
  }
}

// -- tenants and keys -------------------------------------------------------------------

async function loadTenants() {
  const key = state.key || null;
  let list;
  try {
    const { data } = await call("/_emulator/tenants?all=true", { bearer: key });
    state.everyone = true;
    list = data.map((t) => ({
      bearer: t.tenant,
      label: `${t.tenant === key ? "your key" : shortKey(t.tenant)} (${t.assets} assets, ${t.webhooks} webhooks)`,
    }));
    if (key && !data.some((t) => t.tenant === key)) {
      list.unshift({ bearer: key, label: "your key (no data yet)" });
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 403 && key) {
      // An API key: its own tenant only, as the control plane allows.
      const { data } = await call("/_emulator/tenants", { bearer: key });
      state.everyone = false;
      list = data.map((t) => ({ bearer: key, label: `your key (${t.assets} assets, ${t.webhooks} webhooks)` }));
    } else if (err instanceof ApiError && err.status === 401) {
      $("key-prompt").hidden = false;
      state.tenants = [];
      selectTenant(null);
      renderTenants();
      if (key) throw err;
      return;
    } else {
      throw err;
    }
  }
  $("key-prompt").hidden = true;
  state.tenants = list;
  if (state.bearer && !list.some((t) => t.bearer === state.bearer)) selectTenant(null);
  if (!state.bearer && list.length === 1) selectTenant(list[0].bearer);
  renderTenants();
}

let shownTenants = null;

function renderTenants() {
  // Rebuilt only when it changed: a rebuild would close the list under the user's pointer.
  const shown = JSON.stringify([state.tenants, state.bearer]);
  $("forget-key").hidden = !state.key;
  if (shown === shownTenants) return;
  shownTenants = shown;
  const select = $("tenant-select");
  const options = [el("option", state.tenants.length ? "(choose a tenant)" : "(no tenant has data yet)", { value: "" })];
  for (const tenant of state.tenants) {
    const option = el("option", tenant.label, { value: tenant.bearer });
    if (tenant.bearer === state.bearer) option.selected = true;
    options.push(option);
  }
  select.replaceChildren(...options);
}

function selectTenant(bearer) {
  if (bearer === state.bearer) return;
  state.bearer = bearer || null;
  state.offset = 0;
  closeDetail();
  $("request-detail").hidden = true;
}

// -- clock and scenario -----------------------------------------------------------------

async function refreshClock() {
  const { data } = await call("/_emulator/clock");
  $("clock-now").textContent = time(data.now);
  $("clock-mode").textContent = data.mode;
  $("advance-form").hidden = data.mode !== "manual";
}

let shownScenario = null;
let shippedScenarios = null; // one request for the list, however many refreshes overlap

async function refreshScenario() {
  const { data } = await call("/_emulator/scenario");
  const select = $("scenario-select");
  if (!shippedScenarios) {
    shippedScenarios = call("/_emulator/scenarios").then(({ data: shipped }) =>
      select.replaceChildren(...shipped.map((s) => el("option", s.name, { value: s.name, title: s.description }))),
    ).catch((err) => {
      shippedScenarios = null; // asked again on the next refresh
      throw err;
    });
  }
  await shippedScenarios;
  // The switch starts on the scenario in force, and follows it when it changes (another
  // tenant chosen, a switch, a test's PUT); between changes it keeps the user's pick.
  if (data.name !== shownScenario) {
    shownScenario = data.name;
    if ([...select.options].some((o) => o.value === data.name)) select.value = data.name;
  }
  // Shown last: once it names the scenario, the switch below already offers it.
  $("scenario-now").textContent = `${data.name} (${data.scope})`;
}

// -- assets -------------------------------------------------------------------------------

function assetQuery() {
  const filters = [];
  const name = $("filter-name").value.trim();
  const phase = $("filter-phase").value;
  if (name) filters.push({ id: "name", value: name });
  if (phase) filters.push({ id: "phase", value: phase });
  const query = new URLSearchParams({ limit: String(PAGE_SIZE), order: "createdAt-true", count: "true" });
  if (state.offset) query.set("cursor", `skip${state.offset}`);
  if (filters.length) query.set("filters", JSON.stringify(filters));
  return query;
}

function phaseCell(status) {
  const wrap = el("span", null, { class: `phase-${status.phase}` });
  wrap.append(status.phase);
  if (status.phase === "processing" || status.phase === "uploading") {
    const progress = Math.max(0, Math.min(1, Number(status.progress) || 0));
    wrap.append(" ", el("progress", null, { value: String(progress), max: "1", "aria-label": "progress" }));
    wrap.append(` ${Math.round(progress * 100)}%`);
  }
  if (status.phase === "failed" && status.errorMessage) wrap.append(`: ${status.errorMessage}`);
  return wrap;
}

async function refreshAssets() {
  const tbody = $("asset-table").tBodies[0];
  if (!state.bearer) {
    fill(tbody, [], "Choose a tenant to see its assets.", 5);
    $("asset-count").textContent = "";
    $("page-info").textContent = "";
    return;
  }
  const { data, headers } = await call(`/api/asset?${assetQuery()}`);
  const total = Number(headers.get("X-Total-Count"));
  state.total = Number.isFinite(total) ? total : null;
  const rows = data.map((asset) => {
    const open = el("button", asset.name || "(unnamed)", { type: "button", class: "link" });
    open.addEventListener("click", () => openDetail(asset.id));
    const tr = row([open, phaseCell(asset.status || {}), bytes(asset.size), seconds(asset.videoSpec && asset.videoSpec.duration), time(asset.createdAt)]);
    if (asset.id === state.assetId) tr.className = "selected";
    return tr;
  });
  fill(tbody, rows, "No assets.", 5);
  // For bench/dashboard_first_paint.py: when the first page of assets was on screen.
  if (!performance.getEntriesByName("assets-shown").length) performance.mark("assets-shown");
  $("asset-count").textContent = state.total === null ? "" : `(${state.total})`;
  const last = state.offset + data.length;
  $("page-info").textContent = data.length ? `${state.offset + 1}–${last}${state.total === null ? "" : ` of ${state.total}`}` : "";
  $("prev-page").disabled = state.offset === 0;
  $("next-page").disabled = state.total === null ? data.length < PAGE_SIZE : last >= state.total;
}

function closeDetail() {
  state.assetId = null;
  state.playerSource = null;
  $("detail").hidden = true;
  const video = $("player");
  video.removeAttribute("src");
  video.load();
}

async function openDetail(assetId) {
  closeDetail();
  state.assetId = assetId;
  state.deleteArmed = false;
  $("delete-asset").textContent = "Delete asset";
  $("thumbnails").replaceChildren();
  $("detail").hidden = false;
  await refreshDetail();
  $("detail").scrollIntoView({ block: "nearest" });
}

function fact(list, name, value) {
  if (value === undefined || value === null || value === "") return;
  list.append(el("dt", name), el("dd", value));
}

async function refreshDetail() {
  const id = state.assetId;
  if (!id) return;
  let asset;
  try {
    ({ data: asset } = await call(`/api/asset/${encodeURIComponent(id)}?details=1`));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      closeDetail();
      return;
    }
    throw err;
  }
  if (state.assetId !== id) return;
  $("detail-title").textContent = `Asset: ${asset.name || "(unnamed)"}`;
  const facts = $("detail-facts");
  facts.replaceChildren();
  fact(facts, "ID", asset.id);
  fact(facts, "Playback ID", asset.playbackId);
  const phase = el("dd");
  phase.append(phaseCell(asset.status || {}));
  facts.append(el("dt", "Phase"), phase);
  fact(facts, "Size", bytes(asset.size));
  fact(facts, "Duration", seconds(asset.videoSpec && asset.videoSpec.duration));
  fact(facts, "Created", time(asset.createdAt));
  fact(facts, "Playback policy", asset.playbackPolicy && asset.playbackPolicy.type);
  fact(facts, "Playback URL", asset.playbackUrl);
  fact(facts, "Download URL", asset.downloadUrl);

  const tracks = ((asset.videoSpec || {}).tracks || []).map((t) => row([
    t.type, t.codec, t.width ? `${t.width}×${t.height}` : "", t.fps ? `${t.fps} fps` : "",
    t.bitrate ? `${Math.round(t.bitrate / 1000)} kb/s` : "",
    t.channels ? `${t.channels} ch, ${t.sampleRate} Hz` : "",
  ]));
  fill($("tracks").tBodies[0], tracks, "Not probed yet.", 6);
  const hashes = (asset.hash || []).map((h) => row([h.algorithm, el("span", h.hash, { class: "mono" })]));
  fill($("hashes").tBodies[0], hashes, "Not hashed yet.", 2);

  const [made, used, events] = await Promise.all([
    call(`/api/task?${new URLSearchParams({ filters: JSON.stringify([{ id: "outputAssetId", value: id }]) })}`),
    call(`/api/task?${new URLSearchParams({ filters: JSON.stringify([{ id: "inputAssetId", value: id }]) })}`),
    call(`/_emulator/webhooks/deliveries?${new URLSearchParams({ asset: id, limit: "50" })}`),
  ]);
  if (state.assetId !== id) return;
  const tasks = [...made.data, ...used.data].map((t) => row([
    t.type, phaseCell(t.status || {}), time(t.createdAt), (t.status || {}).errorMessage,
  ]));
  fill($("tasks").tBodies[0], tasks, "No tasks.", 4);
  const sent = events.data.map((d) => row([time(d.createdAt), d.event, deliveryStatus(d), d.attempt]));
  fill($("asset-events").tBodies[0], sent, "No webhook events sent for this asset.", 4);

  if (!state.playerSource && asset.playbackUrl) await loadPlayer(asset);
}

async function loadPlayer(asset) {
  const note = $("player-note");
  const policy = (asset.playbackPolicy || {}).type;
  if (policy === "jwt" || policy === "webhook") {
    note.textContent = `Playback is gated (${policy} policy): the dashboard does not play it.`;
    state.playerSource = "gated";
    return;
  }
  let info;
  try {
    ({ data: info } = await call(`/api/playback/${encodeURIComponent(asset.playbackId)}`));
  } catch (err) {
    if (err instanceof ApiError && err.status === 422) return; // not playable yet: next poll
    throw err;
  }
  const sources = (info.meta || {}).source || [];
  const hls = sources.find((s) => s.hrn === "HLS (TS)");
  const mp4 = sources.find((s) => s.hrn === "MP4");
  const video = $("player");
  // The browser's own HLS where it has it (Safari, Chromium), else the MP4 rendition.
  const nativeHls = hls && video.canPlayType("application/vnd.apple.mpegurl") !== "";
  const chosen = nativeHls ? hls : mp4 || hls;
  if (!chosen) return;
  state.playerSource = chosen.url;
  note.textContent = `Playing ${chosen.hrn}: ${chosen.url}`;
  video.src = chosen.url;
  const thumbs = sources.find((s) => s.hrn === "Thumbnails");
  if (thumbs) showThumbnails(thumbs.url).catch(() => {});
}

async function showThumbnails(vttUrl) {
  const response = await fetch(vttUrl, { cache: "no-store" });
  if (!response.ok) return;
  const lines = (await response.text()).split("\n");
  const images = [];
  let cue = "";
  for (const line of lines) {
    if (line.includes("-->")) cue = line.split("-->")[0].trim();
    else if (/\.jpe?g/i.test(line) && images.length < 12) {
      const img = el("img", null, { src: new URL(line.trim(), vttUrl).href, alt: `Thumbnail at ${cue}`, loading: "lazy" });
      images.push(img);
    }
  }
  $("thumbnails").replaceChildren(...images);
}

function deliveryStatus(d) {
  if (d.response) return `${d.response.status} ${d.response.statusText || ""}`.trim();
  return d.error || "no answer";
}

// -- requests ----------------------------------------------------------------------------

async function refreshRequests() {
  const tbody = $("request-table").tBodies[0];
  if (!state.bearer) {
    fill(tbody, [], "Choose a tenant to see its requests.", 6);
    return;
  }
  const { data } = await call("/_emulator/requests?limit=100");
  const rows = data.map((c) => {
    const open = el("button", c.path, { type: "button", class: "link mono" });
    open.addEventListener("click", () => showRequest(c.id));
    const tr = row([time(c.time), c.method, open, c.status, millis(c.durationMs), c.tenant ? shortKey(c.tenant) : "anonymous"]);
    if (c.id === state.requestId) tr.className = "selected";
    return tr;
  });
  fill(tbody, rows, "No requests yet.", 6);
}

async function showRequest(id) {
  state.requestId = id;
  const { data } = await call(`/_emulator/requests/${id}`);
  const lines = [
    `${data.method} ${data.path} → ${data.status}`,
    `time: ${time(data.time)}`,
    `duration: ${millis(data.durationMs)}`,
  ];
  if (data.query && Object.keys(data.query).length) lines.push(`query: ${maskText(data.query)}`);
  if (data.fault) lines.push(`fault injected: ${data.fault}`);
  lines.push("", "Request body:", data.body === undefined ? "(none)" : maskText(data.body));
  lines.push("", "Response body:", data.response === undefined ? "(none)" : maskText(data.response));
  $("request-detail-title").textContent = `Request ${data.method} ${data.path}`;
  $("request-body").textContent = lines.join("\n");
  $("request-detail").hidden = false;
}

// -- webhooks ----------------------------------------------------------------------------

async function refreshWebhooks() {
  const hooks = $("webhook-table").tBodies[0];
  const deliveries = $("delivery-table").tBodies[0];
  if (!state.bearer) {
    fill(hooks, [], "Choose a tenant to see its webhooks.", 4);
    fill(deliveries, [], "", 7);
    return;
  }
  const [subscriptions, log] = await Promise.all([
    call("/api/webhook"),
    call("/_emulator/webhooks/deliveries?limit=100"),
  ]);
  fill(hooks, subscriptions.data.map((w) => row([
    w.name, el("span", w.url, { class: "mono" }), (w.events || []).join(", ") || "all",
    w.status && w.status.lastFailure ? `${time(w.status.lastFailure.timestamp)}: ${w.status.lastFailure.error || w.status.lastFailure.statusCode}` : "",
  ])), "No webhook subscriptions.", 4);
  fill(deliveries, log.data.map((d) => {
    const resend = el("button", "Resend", { type: "button", "aria-label": `Resend ${d.event}` });
    resend.addEventListener("click", () => act(async () => {
      await call(`/api/webhook/${encodeURIComponent(d.webhookId)}/log/${encodeURIComponent(d.id)}/resend`, { method: "POST" });
      await refreshWebhooks();
    }));
    // nextAttemptAt (emulator time): only on the latest failed attempt of a delivery
    // that will be tried again; blank once it succeeded, was retried or was given up.
    const retry = d.nextAttemptAt === undefined ? "" : time(d.nextAttemptAt);
    return row([time(d.createdAt), d.event, d.assetId ? el("span", d.assetId, { class: "mono" }) : "", deliveryStatus(d), d.attempt, retry, resend]);
  }), "No deliveries yet.", 7);
}

// -- the loop ----------------------------------------------------------------------------

async function act(work) {
  try {
    await work();
    showError(null, "action");
  } catch (err) {
    showError(err, "action");
  }
}

async function refresh() {
  // Tenants appear as they get data: look often while none is chosen.
  if (!state.bearer || state.ticks % 5 === 0) await loadTenants();
  state.ticks += 1;
  const overview = state.bearer || (!state.key && state.everyone)
    ? Promise.all([refreshClock(), refreshScenario()]) : null;
  if (state.tab === "assets") {
    await refreshAssets();
    await refreshDetail();
  } else if (state.tab === "requests") {
    await refreshRequests();
  } else {
    await refreshWebhooks();
  }
  await overview;
}

let timer = null;
let running = false;

async function tick() {
  if (running) return;
  running = true;
  clearTimeout(timer);
  try {
    if (!document.hidden) {
      await refresh();
      showError(null);
    }
  } catch (err) {
    showError(err);
  } finally {
    running = false;
    timer = setTimeout(tick, POLL_MS);
  }
}

function now() {
  // A user action: show its effect at once rather than at the next poll.
  if (!running) tick();
}

function wire() {
  $("key-input").value = state.key;
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = $("key-input").value.trim();
    sessionStorage.setItem(KEY_STORAGE, state.key);
    selectTenant(null);
    state.ticks = 0;
    now();
  });
  $("forget-key").addEventListener("click", () => {
    state.key = "";
    $("key-input").value = "";
    sessionStorage.removeItem(KEY_STORAGE);
    selectTenant(null);
    state.ticks = 0;
    now();
  });
  $("tenant-select").addEventListener("change", (event) => {
    selectTenant(event.target.value);
    now();
  });
  for (const button of document.querySelectorAll("nav button")) {
    button.addEventListener("click", () => {
      state.tab = button.dataset.tab;
      for (const other of document.querySelectorAll("nav button")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.id !== state.tab;
      now();
    });
  }
  $("asset-filter").addEventListener("submit", (event) => event.preventDefault());
  $("filter-name").addEventListener("input", () => { state.offset = 0; now(); });
  $("filter-phase").addEventListener("change", () => { state.offset = 0; now(); });
  $("prev-page").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); now(); });
  $("next-page").addEventListener("click", () => { state.offset += PAGE_SIZE; now(); });
  $("close-detail").addEventListener("click", closeDetail);
  $("advance-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const secondsValue = Number($("advance-seconds").value);
    act(async () => {
      await call("/_emulator/clock/advance", { method: "POST", body: { seconds: secondsValue } });
      now();
    });
  });
  $("scenario-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("scenario-select").value;
    act(async () => {
      await call("/_emulator/scenario", { method: "PUT", body: { name } });
      now();
    });
  });
  $("trigger-event").replaceChildren(...TRIGGER_EVENTS.map((e) => el("option", e, { value: e })));
  $("trigger-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const body = { event: $("trigger-event").value, asset: state.assetId };
    act(async () => {
      await call("/_emulator/webhooks/trigger", { method: "POST", body });
      now();
    });
  });
  $("delete-asset").addEventListener("click", () => {
    // Two clicks rather than confirm(): a dialog would block anything driving the page.
    if (!state.deleteArmed) {
      state.deleteArmed = true;
      $("delete-asset").textContent = "Confirm delete";
      return;
    }
    const id = state.assetId;
    act(async () => {
      await call(`/api/asset/${encodeURIComponent(id)}`, { method: "DELETE" });
      closeDetail();
      now();
    });
  });
  tick();
  document.addEventListener("visibilitychange", () => { if (!document.hidden) now(); });
}

wire();
