// The zsched dashboard: plain JavaScript over the HTTP API. The token lives in sessionStorage and travels
// only in the Authorization header. Every text from the server is set as textContent, never parsed as HTML.
"use strict";

const KEY = "zsched.token";
const REFRESH_MS = 5000;
const PAGE = 50;
const STATUS_OF = { upcoming: "pending", processing: "processing", retrying: "pending", failed: "failed",
  sent: "sent", cancelled: "cancelled" };
const AT_OF = { upcoming: "due", retrying: "due", processing: "lease deadline", failed: "failed",
  sent: "sent", cancelled: "cancelled" };
const $ = (id) => document.getElementById(id);

// ``shown`` counts what was asked to be shown: an answer that arrives after a newer request is dropped, so a
// refresh started before a search cannot paint over the search's rows.
const state = { me: null, table: "upcoming", cursors: [null], next: null, search: null, timer: null, shown: 0,
  recipient: null, recipientCursors: [null], recipientNext: null, recipientShown: 0 };

function token() { return sessionStorage.getItem(KEY); }

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}`, Accept: "application/json" };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function notice(text, kind) {
  const el = $("notice");
  el.textContent = text;
  el.className = kind || "";
}

function fail(error) {
  if (error instanceof ApiError && error.status === 401) {
    logout();
    notice(`The token was refused: ${error.message}`, "error");
    return;
  }
  notice(error.message || String(error), "error");
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

function ago(ms) {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7200000) return `${Math.round(ms / 60000)} min`;
  return `${(ms / 3600000).toFixed(1)} h`;
}

function button(label, handler, cls) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener("click", handler);
  return b;
}

function ask(text) {
  return new Promise((resolve) => {
    const dialog = $("confirm");
    $("confirm-text").textContent = text;
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    $("confirm-ok").focus();
  });
}

// -- sign in ------------------------------------------------------------------------------------------------

async function start() {
  try {
    state.me = await api("GET", "api/me");
  } catch (error) {
    fail(error);
    return;
  }
  $("login").hidden = true;
  $("who").hidden = false;
  $("who-text").textContent = `${state.me.user}${state.me.admin ? " (admin)" : ""}`;
  for (const el of document.querySelectorAll("[data-admin]")) {
    el.hidden = !state.me.admin;
    if (el instanceof HTMLOptionElement) el.disabled = !state.me.admin;  // a hidden option can still be chosen
  }
  $("main").hidden = false;
  $("s-recipients").value = state.me.admin ? "" : state.me.user;
  // A user token sees only its own recipient view: the field names them and cannot be changed.
  $("recipient-q").value = state.me.admin ? "" : state.me.user;
  $("recipient-q").readOnly = !state.me.admin;
  if (!state.me.admin) showRecipient(state.me.user);
  notice("", "");
  showTable(state.table);
  refresh();
  state.timer = setInterval(refresh, REFRESH_MS);
}

function logout() {
  sessionStorage.removeItem(KEY);
  clearInterval(state.timer);
  state.me = null;
  $("main").hidden = true;
  $("who").hidden = true;
  $("login").hidden = false;
  $("rows").replaceChildren();
  state.recipient = null;
  $("recipient-rows").replaceChildren();
  $("recipient-summary").textContent = "";
  $("recipient-gateways").replaceChildren();
  $("recipient-table").hidden = true;
  $("recipient-pager").hidden = true;
  $("token").focus();
}

// -- overview and processes ---------------------------------------------------------------------------------

async function refresh() {
  if (!state.me) return;
  try {
    if (state.me.admin) await Promise.all([overview(), processes(), chart(), pauses()]);
    // Rows are redrawn only when no one is working in them: a redraw would take away the keyboard's focus.
    const busy = $("rows-table").contains(document.activeElement) || document.querySelector("dialog[open]");
    if (!state.search && state.cursors.length === 1 && !busy) await loadRows();
    // The recipient view's redraw holds no focusable element (its form and pager stay), so it always refreshes.
    if (state.recipient && state.recipientCursors.length === 1) await loadRecipient();
  } catch (error) {
    fail(error);
  }
}

async function overview() {
  const stats = await api("GET", "api/stats");
  const dl = $("counters");
  dl.replaceChildren();
  for (const [name, count] of Object.entries(stats.counts)) {
    const box = document.createElement("div");
    box.id = `count-${name}`;
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = count.toLocaleString();
    box.append(dt, dd);
    dl.appendChild(box);
  }
  $("due-line").textContent = stats.next_due_at
    ? `Next due ${when(stats.next_due_at)}; oldest overdue lag ${ago(stats.oldest_overdue_ms)}.`
    : "Nothing pending.";
  // The dead set is capped per partition: what a failure past the cap dropped is counted, and said here.
  const dropped = stats.totals.dead_dropped || 0;
  $("dead-line").textContent = `Dead letters: ${stats.counts.failed.toLocaleString()} kept (cap ` +
    `${stats.max_dead ? `${stats.max_dead.toLocaleString()} per partition` : "none"}); ` +
    `${dropped.toLocaleString()} dropped over the cap.`;
  $("dead-line").dataset.dropped = String(dropped);
  $("dead-line").className = dropped ? "warn" : "";
  const body = $("partitions").tBodies[0];
  body.replaceChildren();
  for (const p of stats.partitions) {
    const tr = document.createElement("tr");
    cell(tr, p.partition);
    for (const s of ["pending", "processing", "sent", "cancelled", "failed"]) cell(tr, p.counts[s]);
    cell(tr, p.totals.dead_dropped || 0);
    cell(tr, when(p.next_due_at));
    cell(tr, ago(p.oldest_overdue_ms));
    body.appendChild(tr);
  }
  const choice = $("partition");
  if (choice.options.length !== stats.partitions.length + 1) {  // "all", then one per partition
    choice.replaceChildren(choice.options[0]);
    for (const p of stats.partitions) choice.add(new Option(String(p.partition), String(p.partition)));
  }
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

// What delivery is paused for (everything, or some types), since when, and how much waits aside meanwhile.
async function pauses() {
  showPauses(await api("GET", "api/pauses"));
}

function showPauses(paused) {
  const since = (scope) => (paused.since[scope] ? ` since ${when(paused.since[scope])}` : "");
  const parts = [];
  if (paused.all) parts.push(`paused for every notification${since("*")}`);
  if (paused.types.length) {
    parts.push(`paused for type${paused.types.length === 1 ? "" : "s"} ` +
      paused.types.map((t) => `${t}${since(t)}`).join(", "));
  }
  const line = $("pause-line");
  line.textContent = parts.length
    ? `${parts.join("; ")}; ${paused.parked.toLocaleString()} waiting aside.`
    : "running: nothing is paused.";
  line.className = parts.length ? "warn" : "";
  line.dataset.all = String(paused.all);
  line.dataset.types = paused.types.join(",");
}

function lateText(ms) {
  if (ms === null || ms === undefined) return "-";
  return ms < 1000 ? `${ms} ms` : ms < 60000 ? `${ms / 1000} s` : ms < 3600000 ? `${ms / 60000} min` : `${ms / 3600000} h`;
}

async function chart() {
  const { minutes } = await api("GET", "api/throughput?minutes=60");
  const canvas = $("chart");
  const g = canvas.getContext("2d");
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const w = canvas.width, h = canvas.height, pad = 28, right = 56, slot = (w - pad - right) / minutes.length;
  g.clearRect(0, 0, w, h);
  g.font = "12px system-ui, sans-serif";
  const top = Math.max(1, ...minutes.map((m) => m.sent));
  g.fillStyle = color("--accent");
  minutes.forEach((m, i) => {
    const bar = (m.sent / top) * (h - 2 * pad);
    g.fillRect(pad + i * slot + 1, h - pad - bar, Math.max(1, slot - 2), bar);
  });
  // Lateness on a log scale from 1 ms to an hour: where each p50 and p99 falls.
  const y = (ms) => h - pad - (Math.log10(Math.max(1, Math.min(ms, 3600000))) / Math.log10(3600000)) * (h - 2 * pad);
  [["p50_ms", "--ok", "p50"], ["p99_ms", "--bad", "p99"]].forEach(([key, name, label], n) => {
    g.strokeStyle = g.fillStyle = color(name);
    g.lineWidth = 2;
    g.beginPath();
    let open = false;
    minutes.forEach((m, i) => {
      if (m[key] === null) { open = false; return; }
      const x = pad + (i + 0.5) * slot;
      if (open) g.lineTo(x, y(m[key])); else g.moveTo(x, y(m[key]));
      g.fillRect(x - 3, y(m[key]) - 3, 6, 6);  // a dot per minute: one minute alone still shows
      open = true;
    });
    g.stroke();
    g.fillText(`— ${label} lateness`, w - right - 220 + n * 110, pad - 10);
  });
  g.fillStyle = color("--muted");
  g.fillText(`${top} sent`, 2, pad - 10);
  for (const ms of [1, 1000, 60000, 3600000]) g.fillText(lateText(ms), w - right + 6, y(ms) + 4);
  g.fillText("60 min ago", pad, h - 8);
  g.fillText("now", w - right - 24, h - 8);
  const sum = (k) => minutes.reduce((a, m) => a + m[k], 0);
  const worst = Math.max(-1, ...minutes.map((m) => m.p99_ms ?? -1));
  const last = [...minutes].reverse().find((m) => m.p50_ms !== null);
  $("chart-summary").textContent = `In the last hour: ${sum("sent")} sent, ${sum("retried")} retried, ` +
    `${sum("failed")} failed for good; lateness in the latest minute with deliveries: p50 ≤ ` +
    `${lateText(last ? last.p50_ms : null)}, p99 ≤ ${lateText(last ? last.p99_ms : null)}; ` +
    `worst minute's p99 ≤ ${lateText(worst < 0 ? null : worst)}.`;
  canvas.dataset.sent = String(sum("sent"));
}

async function processes() {
  const answer = await api("GET", "api/processes");
  const body = $("process-rows");
  body.replaceChildren();
  if (!answer.processes.length) {
    const tr = document.createElement("tr");
    cell(tr, "No worker or gateway has sent a heartbeat.", "empty").colSpan = 9;
    body.appendChild(tr);
  }
  for (const p of answer.processes) {
    const tr = document.createElement("tr");
    tr.dataset.process = p.id;
    if (p.late) tr.className = "late";
    cell(tr, p.kind);
    cell(tr, p.host);
    cell(tr, p.pid);
    cell(tr, p.version);
    cell(tr, when(p.started_at));
    cell(tr, p.partitions.join(", "));
    cell(tr, p.in_flight);
    cell(tr, p.sockets === null ? "-" : p.sockets);
    cell(tr, `${ago(p.age_ms)} ago${p.late ? " (late)" : ""}`);
    body.appendChild(tr);
  }
}

// -- tables -------------------------------------------------------------------------------------------------

function showTable(name) {
  state.table = name;
  state.cursors = [null];
  state.search = null;
  $("search-q").value = "";
  for (const b of document.querySelectorAll("[data-table]")) b.setAttribute("aria-pressed", String(b.dataset.table === name));
  $("requeue-all").hidden = !(state.me && state.me.admin && name === "failed");
  return loadRows().catch(fail);
}

async function page(cursor) {
  // An admin reads the tables; a user token lists only what it receives, by status.
  if (state.me.admin) {
    const query = new URLSearchParams({ limit: PAGE });
    if (cursor) query.set("cursor", cursor);
    if ($("partition").value) query.set("partition", $("partition").value);
    return api("GET", `api/tables/${state.table}/?${query}`);
  }
  const query = new URLSearchParams({ limit: PAGE, status: STATUS_OF[state.table] });
  if (cursor) query.set("cursor", cursor);
  const answer = await api("GET", `api/notifications/?${query}`);
  if (state.table === "retrying") answer.items = answer.items.filter((n) => n.attempts > 0);
  return answer;
}

function atOf(n, table) {
  if (n.at && table !== "failed" && table !== "sent" && table !== "cancelled") return n.at;
  return { failed: n.failed_at, sent: n.sent_at, cancelled: n.cancelled_at }[table] || n.scheduled_at;
}

async function loadRows() {
  const asked = ++state.shown;
  const answer = await page(state.cursors[state.cursors.length - 1]);
  if (asked !== state.shown) return;
  state.next = answer.next_cursor;
  render(answer.items, state.table);
}

function render(items, table) {
  $("rows-caption").textContent = state.search
    ? `Found for ${state.search}` : document.querySelector(`[data-table="${table}"]`).textContent;
  $("at-h").textContent = state.search ? "scheduled" : AT_OF[table];
  const body = $("rows");
  body.replaceChildren();
  if (!items.length) {
    const tr = document.createElement("tr");
    cell(tr, "Nothing here.", "empty").colSpan = 9;
    body.appendChild(tr);
  }
  for (const n of items) {
    const tr = document.createElement("tr");
    tr.dataset.id = n.id;
    cell(tr, n.id);
    cell(tr, n.recipient);
    cell(tr, n.title, "wrap");
    cell(tr, n.scheduled_status, `status-${n.scheduled_status}`);
    cell(tr, when(state.search ? n.scheduled_at : atOf(n, table)));
    cell(tr, n.priority);
    cell(tr, n.attempts);
    cell(tr, n.last_error, "wrap");
    const actions = cell(tr, "");
    if (n.scheduled_status === "pending") {
      actions.append(button(`Cancel ${n.id}`, () => cancel(n.id), "danger"), " ",
        button(`Reschedule ${n.id}`, () => reschedule(n.id, n.scheduled_at)));
    }
    if (n.scheduled_status === "failed" && state.me.admin) {
      actions.append(button(`Retry ${n.id} now`, () => retry([n.id])));
    }
    body.appendChild(tr);
  }
  $("prev-page").disabled = state.search !== null || state.cursors.length === 1;
  $("first-page").disabled = state.search !== null || state.cursors.length === 1;
  $("next-page").disabled = state.search !== null || !state.next;
}

async function search(q) {
  q = q.trim();
  if (!q) return showTable(state.table);
  state.search = q;
  const asked = ++state.shown;
  try {
    let items;
    const by = $("search-by").value === "auto" ? "recipient" : $("search-by").value;
    if ($("search-by").value === "auto" && /^\d+$/.test(q)) {
      try {
        items = [await api("GET", `api/notifications/${q}/`)];
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) throw error;
        items = [];
      }
    } else if (by === "title") {
      items = (await api("GET", `api/search?${new URLSearchParams({ title: q, limit: PAGE })}`)).items;
    } else {
      items = (await api("GET", `api/notifications/?${new URLSearchParams({ [by]: q, limit: PAGE })}`)).items;
    }
    if (asked !== state.shown) return;
    render(items, state.table);
    notice(`${items.length} found for ${q}.`, "ok");
  } catch (error) {
    fail(error);
  }
}

// -- one recipient ------------------------------------------------------------------------------------------

function showRecipient(who) {
  who = who.trim();
  if (!who) return Promise.resolve();
  state.recipient = who;
  state.recipientCursors = [null];
  return loadRecipient().catch(fail);
}

async function loadRecipient() {
  const asked = ++state.recipientShown;
  const query = new URLSearchParams({ recipient: state.recipient, limit: PAGE });
  const cursor = state.recipientCursors[state.recipientCursors.length - 1];
  if (cursor !== null) query.set("cursor", cursor);
  const view = await api("GET", `api/recipient?${query}`);
  if (asked !== state.recipientShown) return;
  state.recipientNext = view.next_cursor;
  const sockets = `${view.sockets} open socket${view.sockets === 1 ? "" : "s"}`;
  $("recipient-summary").textContent = `${view.recipient}: ${sockets} now. Of the ${view.listed} ` +
    `${state.recipientCursors.length === 1 ? "latest" : "listed"} notification(s): ${view.sent} sent, ` +
    `${view.received} received (acknowledged by their client), ${view.read} read.`;
  $("recipient-summary").dataset.sockets = String(view.sockets);
  const gateways = $("recipient-gateways");
  gateways.replaceChildren();
  for (const g of view.gateways) {
    const li = document.createElement("li");
    li.textContent = `${g.sockets} on ${g.host} (pid ${g.pid}), heartbeat ${when(g.last_beat_at)}` +
      (g.late ? " (late: not counted)" : "");
    if (g.late) li.className = "warn";
    gateways.appendChild(li);
  }
  const body = $("recipient-rows");
  body.replaceChildren();
  if (!view.items.length) {
    const tr = document.createElement("tr");
    cell(tr, "Nothing for this recipient.", "empty").colSpan = 9;
    body.appendChild(tr);
  }
  for (const n of view.items) {
    const tr = document.createElement("tr");
    tr.dataset.id = n.id;
    cell(tr, n.id);
    cell(tr, n.title, "wrap");
    cell(tr, n.scheduled_status, `status-${n.scheduled_status}`);
    cell(tr, when(n.scheduled_at));
    cell(tr, when(n.sent_at));
    cell(tr, n.delivered_at ? when(n.delivered_at) : "-", n.delivered_at ? "received" : "");
    cell(tr, n.read_at ? when(n.read_at) : "-", n.read_at ? "read" : "");
    cell(tr, n.attempts);
    cell(tr, n.last_error, "wrap");
    body.appendChild(tr);
  }
  $("recipient-table").hidden = false;
  $("recipient-pager").hidden = false;
  $("recipient-first").disabled = state.recipientCursors.length === 1;
  $("recipient-next").disabled = state.recipientNext === null;
}

// -- actions ------------------------------------------------------------------------------------------------

async function after(text) {
  notice(text, "ok");
  await refresh();
  if (state.search) await search(state.search);
  else await loadRows();
  // The row acted on was redrawn (or is gone): keep the keyboard in the table, at its table's tab.
  if (document.activeElement === document.body) document.querySelector('[data-table][aria-pressed="true"]').focus();
}

async function cancel(id) {
  try {
    await api("DELETE", `api/notifications/${id}/cancel_scheduled/`);
    await after(`Cancelled ${id}.`);
  } catch (error) {
    fail(error);
  }
}

function localInput(date) {
  const pad = (v) => String(v).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:` +
    `${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function reschedule(id, current) {
  const dialog = $("reschedule");
  $("reschedule-id").textContent = id;
  $("r-at").value = localInput(new Date(current));
  dialog.returnValue = "";
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "ok") return;
    try {
      await api("PATCH", `api/notifications/${id}/`, { scheduled_at: new Date($("r-at").value).toISOString() });
      await after(`Rescheduled ${id}.`);
    } catch (error) {
      fail(error);
    }
  }, { once: true });
  dialog.showModal();
  $("r-at").focus();
}

async function retry(ids) {
  try {
    const answer = await api("POST", "api/dead/requeue/", { ids });
    await after(`Requeued ${answer.requeued.length}: ${answer.requeued.join(", ") || "none"}` +
      (answer.missing.length ? `; not dead letters: ${answer.missing.join(", ")}` : ""));
  } catch (error) {
    fail(error);
  }
}

async function requeueAll() {
  const stats = await api("GET", "api/stats").catch(() => null);
  const count = stats ? stats.counts.failed : "every";
  if (!(await ask(`Requeue ${count} dead letter(s) for delivery now, each with a fresh set of attempts?`))) {
    notice("Nothing requeued.", "");
    return;
  }
  try {
    const answer = await api("POST", "api/dead/requeue/", { all: true });
    await after(`Requeued ${answer.requeued.length} dead letter(s).`);
  } catch (error) {
    fail(error);
  }
}

async function pauseOrResume(resume) {
  const type = $("pause-type").value.trim();
  const what = type ? `notifications of type ${type}` : "every notification";
  const question = resume
    ? `Resume delivery of ${type ? what : "everything paused (every pause is lifted)"}? What waited is sent in ` +
      "due order."
    : `Pause delivery of ${what}? Nothing of it is sent until it is resumed; what falls due meanwhile waits.`;
  if (!(await ask(question))) {
    notice(resume ? "Nothing resumed." : "Nothing paused.", "");
    return;
  }
  try {
    showPauses(await api("POST", resume ? "api/resume" : "api/pause", type ? { type } : {}));
    await after(`${resume ? "Resumed" : "Paused"} delivery of ${type ? `type ${type}` : "everything"}.`);
  } catch (error) {
    fail(error);
  }
}

async function schedule() {
  let data = null;
  const raw = $("s-data").value.trim();
  if (raw) {
    try {
      data = JSON.parse(raw);
    } catch (error) {
      notice(`Data must be a JSON object: ${error.message}`, "error");
      $("s-data").focus();
      return;
    }
  }
  const at = new Date($("s-at").value);  // datetime-local: the viewer's own time zone
  if (Number.isNaN(at.getTime())) {
    notice("Give a date and time.", "error");
    return;
  }
  const body = {
    recipients: $("s-recipients").value.split(/[\s,]+/).filter(Boolean),
    title: $("s-title").value,
    message: $("s-message").value,
    type: $("s-type").value,
    priority: $("s-priority").value,
    scheduled_at: at.toISOString(),
  };
  if (data !== null) body.data = data;
  try {
    const answer = await api("POST", "api/notifications/schedule/", body);
    $("s-title").value = "";
    $("s-message").value = "";
    showTable("upcoming");
    await after(`Scheduled ${answer.count} notification(s) for ${when(answer.scheduled_at)}: ` +
      answer.notification_ids.join(", "));
  } catch (error) {
    fail(error);
  }
}

// -- wiring -------------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  $("s-zone").textContent = `(${zone})`;
  $("r-zone").textContent = `(${zone})`;
  $("s-at").value = localInput(new Date(Date.now() + 3600000));
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("token").value.trim());
    $("token").value = "";
    start();
  });
  $("logout").addEventListener("click", () => { logout(); notice("Token forgotten.", ""); });
  for (const b of document.querySelectorAll("[data-table]")) b.addEventListener("click", () => showTable(b.dataset.table));
  $("search").addEventListener("submit", (event) => { event.preventDefault(); search($("search-q").value); });
  $("search-clear").addEventListener("click", () => showTable(state.table));
  for (const b of document.querySelectorAll("[data-close]")) b.addEventListener("click", () => b.closest("dialog").close(""));
  $("search-by").addEventListener("change", () => {
    $("search-q").placeholder = { created_by: "billing", title: "dentist" }[$("search-by").value] || "42 or alice";
  });
  $("requeue-all").addEventListener("click", requeueAll);
  $("pause-form").addEventListener("submit", (event) => { event.preventDefault(); pauseOrResume(false); });
  $("resume").addEventListener("click", () => pauseOrResume(true));
  $("partition").addEventListener("change", () => showTable(state.table));
  $("next-page").addEventListener("click", () => {
    if (!state.next) return;
    state.cursors.push(state.next);
    loadRows().catch(fail);
  });
  $("prev-page").addEventListener("click", () => {
    if (state.cursors.length > 1) state.cursors.pop();
    loadRows().catch(fail);
  });
  $("first-page").addEventListener("click", () => { state.cursors = [null]; loadRows().catch(fail); });
  $("schedule-form").addEventListener("submit", (event) => { event.preventDefault(); schedule(); });
  $("recipient-form").addEventListener("submit", (event) => {
    event.preventDefault();
    showRecipient($("recipient-q").value);
  });
  $("recipient-next").addEventListener("click", () => {
    if (state.recipientNext === null) return;
    state.recipientCursors.push(state.recipientNext);
    loadRecipient().catch(fail);
  });
  $("recipient-first").addEventListener("click", () => { state.recipientCursors = [null]; loadRecipient().catch(fail); });
  if (token()) start();
  else $("token").focus();
});
