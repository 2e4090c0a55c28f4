// The inbox page: runs and their resume state, open tasks (oldest first) with counts per run
// and node, and a task view with what the step shows the approver and a generated form.
// Routes live in the URL hash: "#/?assignee=ann&run=r&node=n&step=s&offset=0" and
// "#/task/RUN/TASK_ID".
//
// The access token comes once in the printed URL (?token=...); the page keeps it in
// localStorage, which is private to this origin (port included, unlike cookies), removes it
// from the address bar and sends it as "Authorization: Bearer" with every API call.
import { GeneratedForm } from "./form.js";

const PAGE = 50;
const TIMEOUT_MS = 45000;  // longer than the resume long-poll (30 s)
const TOKEN_KEY = "shardflow-token";
const $ = (id) => document.getElementById(id);
let session = null;
let form = null;
let current = null;   // the task shown in the task view
let dirty = false;    // the approver typed something not yet submitted
let shownHash = "";   // the route on screen (to stay there when leaving is cancelled)

function takeToken() {
  const url = new URL(location.href);
  const given = url.searchParams.get("token");
  if (given !== null) {
    localStorage.setItem(TOKEN_KEY, given);  // a newer server's URL replaces an older token
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  return localStorage.getItem(TOKEN_KEY);
}

const token = takeToken();

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch("/api" + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit", signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (e) {
    const detail = "The inbox server cannot be reached (" + (e.name === "TimeoutError" ? "no answer" : "stopped?") +
      "). Start 'shardflow tasks serve' again and open the URL it prints.";
    notice(detail);
    return { status: 0, ok: false, body: { detail } };
  }
  let json = null;
  try { json = await response.json(); } catch { json = { detail: response.statusText }; }
  if (response.status === 401) {
    notice("This page has no valid access token (the server was restarted?): open the URL " +
      "'shardflow tasks serve' printed, with ?token=.");
  } else if (response.ok && !$("notice").hidden) {
    notice("");  // the server is back (or the problem is gone)
  }
  return { status: response.status, ok: response.ok, body: json };
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

function toast(text) {
  $("toast").textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { $("toast").textContent = ""; }, 4000);
}

function ago(ts) {
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

function cell(row, content) {
  const td = row.insertCell();
  if (content instanceof Node) td.append(content); else td.textContent = content ?? "";
  return td;
}

function link(href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  return a;
}

function route() {
  const hash = location.hash.slice(1) || "/";
  const [path, query = ""] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query) };
}

function inboxHash(params) {
  const q = new URLSearchParams([...params].filter(([, v]) => v !== "" && v !== null));
  return "#/" + (q.toString() ? "?" + q : "");
}

// --- runs --------------------------------------------------------------------------------

function renderRun(run) {
  const box = document.createElement("div");
  const resume = run.resume;
  box.className = `run ${resume.status}`;
  box.dataset.run = run.name;
  const title = document.createElement("strong");
  title.textContent = run.name;
  const state = document.createElement("span");
  state.className = "state";
  const timers = run.open_timers ?
    `, ${run.open_timers} parked timer(s), the next due ` +
    new Date(run.next_timer_due * 1000).toLocaleString() : "";
  const webhooks = run.open_webhooks ? `, ${run.open_webhooks} awaiting a webhook` : "";
  state.textContent = ` — ${run.open_tasks} open task(s)${timers}${webhooks}, ` +
    `${run.waiting_instances} waiting instance(s), ${run.ready_instances} ready to resume; ` +
    `resume: ${resume.status}` + (resume.queued ? " (another queued)" : "");
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = resume.status === "running" ? "Resuming…" : "Resume run";
  button.disabled = resume.status === "running" || run.ready_instances === 0;
  button.addEventListener("click", () => startResume(run.name));
  box.append(title, state, " ", button);
  if (resume.message) {
    const message = document.createElement("p");
    message.className = "message";
    message.textContent = resume.message;
    message.title = resume.output.join("\n");
    box.append(message);
  }
  return box;
}

function showRun(run) {
  const old = document.querySelector(`.run[data-run="${CSS.escape(run.name)}"]`);
  const fresh = renderRun(run);
  if (old) old.replaceWith(fresh); else $("run-list").append(fresh);
  return fresh;
}

async function loadRuns() {
  const { ok, body } = await api("/runs");
  if (!ok) return;
  $("run-list").replaceChildren(...body.runs.map(renderRun));
  for (const run of body.runs) if (run.resume.status === "running") followResume(run.name);
}

async function startResume(name) {
  const { ok, body } = await api(`/runs/${encodeURIComponent(name)}/resume`, { method: "POST" });
  if (!ok) { toast(body.detail); return; }
  showRun(body);
  followResume(name);
}

const following = new Set();
async function followResume(name) {
  if (following.has(name)) return;
  following.add(name);
  try {
    for (;;) {  // long-poll: the server answers when the resume ends (or after 30 s)
      const { ok, body } = await api(`/runs/${encodeURIComponent(name)}?wait=30`);
      if (!ok) return;
      showRun(body);
      if (body.resume.status !== "running") {
        toast(`resume of ${name}: ${body.resume.status}`);
        if (!$("inbox-view").hidden) loadTasks();
        return;
      }
    }
  } finally {
    following.delete(name);
  }
}

// --- inbox -------------------------------------------------------------------------------

async function loadCounts(params) {
  const assignee = params.get("assignee") || "";
  const q = assignee ? `?assignee=${encodeURIComponent(assignee)}` : "";
  const { ok, body } = await api("/inbox" + q);
  if (!ok) return;
  const table = document.createElement("table");
  table.className = "counts";
  table.createTHead().innerHTML = "<tr><th>Run</th><th>Node / step</th><th>Open</th><th>Oldest</th></tr>";
  const rows = table.createTBody();
  for (const run of body.runs) {
    const all = new URLSearchParams({ assignee, run: run.run });
    const head = rows.insertRow();
    cell(head, link(inboxHash(all), run.run));
    cell(head, "all");
    cell(head, String(run.open)).className = "num";
    cell(head, "");
    for (const group of run.nodes) {
      const row = rows.insertRow();
      const only = new URLSearchParams({ assignee, run: run.run, node: group.node, step: group.step });
      cell(row, "");
      cell(row, link(inboxHash(only), `${group.node} / ${group.step}`));
      cell(row, String(group.open)).className = "num";
      cell(row, ago(group.oldest));
    }
  }
  $("counts").replaceChildren(table);
}

async function loadTasks() {
  const { params } = route();
  const offset = Number(params.get("offset") || 0);
  const q = new URLSearchParams([...params].filter(([k]) => ["run", "node", "step", "assignee"].includes(k)));
  q.set("offset", String(offset));
  q.set("limit", String(PAGE));
  const [{ ok, body }] = await Promise.all([api("/tasks?" + q), loadCounts(params)]);
  if (!ok) { notice(body.detail); return; }
  const rows = $("task-rows");
  rows.replaceChildren();
  for (const task of body.tasks) {
    const row = rows.insertRow();
    const a = link(`#/task/${encodeURIComponent(task.run)}/${encodeURIComponent(task.id)}`, task.summary || task.title);
    a.className = "task-link";
    cell(row, a);
    cell(row, task.run);
    cell(row, `${task.node} / ${task.step}`);
    cell(row, String(task.instance_id));
    cell(row, task.assignee || "—");
    cell(row, ago(task.created_at)).title = new Date(task.created_at * 1000).toLocaleString();
  }
  if (!body.tasks.length) cell(rows.insertRow(), "No open tasks.").colSpan = 6;
  const filters = ["run", "node", "step", "assignee"].filter((k) => params.get(k)).map((k) => `${k}=${params.get(k)}`);
  $("filter-info").textContent = filters.length ? `showing ${filters.join(", ")}` : "";
  $("page-info").textContent = body.total ? `${offset + 1}–${offset + body.tasks.length} of ${body.total}` : "";
  $("prev").disabled = offset === 0;
  $("next").disabled = offset + body.tasks.length >= body.total;
}

function page(delta) {
  const { params } = route();
  params.set("offset", String(Math.max(0, Number(params.get("offset") || 0) + delta)));
  location.hash = inboxHash(params);
}

// --- task view ---------------------------------------------------------------------------

function facts(dl, rows) {
  dl.replaceChildren();
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    dl.append(dt, dd);
  }
}

function shown(value) {  // short values on one line, long ones indented
  if (typeof value === "string") return value;
  const line = JSON.stringify(value);
  return line.length <= 80 ? line : JSON.stringify(value, null, 2);
}

async function loadTask(run, id) {
  const { ok, status, body } = await api(`/runs/${encodeURIComponent(run)}/tasks/${encodeURIComponent(id)}`);
  $("form-status").textContent = "";
  $("form-status").className = "";
  if (!ok) {
    $("task-title").textContent = status === 0 ? "Server not reachable" : "Task not found";
    $("form-status").textContent = body.detail;
    $("task-form").hidden = true;
    return;
  }
  current = body;
  const schema = body.form_schema || {};
  $("task-title").textContent = body.title;
  $("task-description").textContent = body.description || "";
  facts($("task-display"), (body.display || []).map((f) => [f.label, f.missing ? "(not in the context)" : shown(f.value)]));
  $("form-title").textContent = schema.title || "";
  $("form-description").textContent = schema.description || "";
  const rows = [["Run", body.run], ["Node / step", `${body.node} / ${body.step}`], ["Instance", String(body.instance_id)],
    ["Assignee", body.assignee || "—"], ["Waiting since", new Date(body.created_at * 1000).toLocaleString()]];
  if (body.due_at) rows.push(["Due", new Date(body.due_at * 1000).toLocaleString()]);
  facts($("task-meta"), rows);
  $("task-form").hidden = false;
  $("json-mode").checked = false;
  $("json-editor").hidden = true;
  $("fields").hidden = false;
  $("fields-set").disabled = false;
  form = new GeneratedForm($("fields"), body.form_schema);
  dirty = false;
  if (body.completed_at) {
    form.fill(body.data || {});
    $("fields-set").disabled = true;
    taken(body.completed_by, body.completed_at);
    return;
  }
  $("submit").disabled = false;
  const first = $("fields").querySelector("input, select, textarea");
  (first || $("task-title")).focus();
}

function taken(by, at) {
  $("form-status").className = "taken";
  const when = at ? ` on ${new Date(at * 1000).toLocaleString()}` : "";
  $("form-status").textContent = `This task was already completed by ${by || "someone"}${when}.`;
  $("submit").disabled = true;
  dirty = false;
}

async function submitTask(event) {
  event.preventDefault();
  if (!current || $("submit").disabled) return;
  let data;
  $("json-text-error").textContent = "";
  if ($("json-mode").checked) {
    try { data = JSON.parse($("json-text").value); } catch (e) {
      $("json-text-error").textContent = "not valid JSON: " + e.message;
      $("json-text").focus();
      return;
    }
  } else {
    data = form.collect();
    if (data === null) return;
  }
  $("submit").disabled = true;
  const path = `/runs/${encodeURIComponent(current.run)}/tasks/${encodeURIComponent(current.id)}/complete`;
  const { status, body } = await api(path, { method: "POST", body: data });
  if (status === 200) {
    toast(`completed: ${current.summary || current.title}`);
    dirty = false;
    location.hash = "#/";
    return;
  }
  $("submit").disabled = false;
  if (status === 422) {
    const rest = $("json-mode").checked ? body.violations : form.showViolations(body.violations);
    $("form-status").textContent = rest.length
      ? rest.map((v) => `${v.pointer || "(form)"}: ${v.message}`).join("\n")
      : "Please correct the fields marked below.";
  } else if (status === 409) {
    taken(body.completed_by, body.completed_at);
  } else {
    $("form-status").textContent = body.detail;
  }
}

function toggleJson() {
  const on = $("json-mode").checked;
  if (on) {
    const data = form.collect();
    $("json-text").value = JSON.stringify(data ?? {}, null, 2);
  }
  $("json-editor").hidden = !on;
  $("fields").hidden = on;
  (on ? $("json-text") : $("fields").querySelector("input, select, textarea"))?.focus();
}

// --- wiring ------------------------------------------------------------------------------

const LEAVE = "Leave this task? What you typed has not been submitted and will be lost.";

// Navigation away from a task with typed input asks first; "Cancel" stays on the task.
function mayLeave() {
  return !dirty || $("task-view").hidden || confirm(LEAVE);
}

function goInbox() {
  if (mayLeave()) { dirty = false; location.hash = "#/"; }
}

async function onHashChange() {
  if (location.hash === shownHash) return;
  if (!mayLeave()) { history.replaceState(null, "", shownHash || "#/"); return; }
  dirty = false;
  await render();
}

async function render() {
  shownHash = location.hash;
  const { parts, params } = route();
  const onTask = parts[0] === "task" && parts.length === 3;
  $("inbox-view").hidden = onTask;
  $("task-view").hidden = !onTask;
  if (onTask) {
    current = null;  // never show (or submit) the previous task while this one loads
    $("task-title").textContent = "Loading…";
    for (const id of ["task-meta", "task-display", "fields"]) $(id).replaceChildren();
    for (const id of ["task-description", "form-title", "form-description"]) $(id).textContent = "";
    $("form-status").textContent = "";
    $("submit").disabled = true;
    await loadTask(parts[1], parts[2]);
    return;
  }
  current = null;
  $("assignee").value = params.get("assignee") || "";
  await Promise.all([loadRuns(), loadTasks()]);
  const first = document.querySelector(".task-link");
  if (first && document.activeElement === document.body) first.focus();
}

function moveSelection(delta) {
  const links = [...document.querySelectorAll(".task-link")];
  if (!links.length) return;
  const at = links.indexOf(document.activeElement);
  links[Math.min(links.length - 1, Math.max(0, at + delta))].focus();
}

function onKey(event) {
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName);
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !$("task-view").hidden) {
    event.preventDefault();
    $("task-form").requestSubmit();
  } else if (event.key === "Escape" && !$("task-view").hidden) {
    goInbox();
  } else if (!typing && event.key === "/") {
    event.preventDefault();
    $("assignee").focus();
  } else if (!typing && (event.key === "j" || event.key === "k")) {
    moveSelection(event.key === "j" ? 1 : -1);
  }
}

async function start() {
  const { ok, body } = await api("/session");
  if (!ok) {
    if ($("notice").hidden) notice(body.detail);
    $("task-title").textContent = "";
    return;
  }
  session = body;
  $("who").textContent = `as ${body.user}` + (body.assignee_only ? " (own tasks only)" : "") +
    (body.auto_resume ? ", auto-resume on" : "");
  $("filter").addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = inboxHash(new URLSearchParams({ assignee: $("assignee").value.trim() }));
  });
  $("clear-filter").addEventListener("click", () => { location.hash = "#/"; });
  $("prev").addEventListener("click", () => page(-PAGE));
  $("next").addEventListener("click", () => page(PAGE));
  $("task-form").addEventListener("submit", submitTask);
  $("json-mode").addEventListener("change", toggleJson);
  document.addEventListener("keydown", onKey);
  $("task-form").addEventListener("input", () => { dirty = true; });
  $("back").addEventListener("click", (e) => { e.preventDefault(); goInbox(); });
  window.addEventListener("hashchange", onHashChange);
  window.addEventListener("beforeunload", (e) => { if (dirty) e.preventDefault(); });
  await render();
}

start();
