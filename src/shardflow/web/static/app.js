// The inbox page: runs and their resume state, open tasks (oldest first) with counts per run
// and node, and a task view with a generated form. Routes live in the URL hash:
// "#/?assignee=ann&run=r&node=n&step=s&offset=0" and "#/task/RUN/TASK_ID".
import { GeneratedForm } from "./form.js";

const PAGE = 50;
const $ = (id) => document.getElementById(id);
let session = null;
let form = null;
let current = null;   // the task shown in the task view

function cookie(name) {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers[session ? session.csrf.header : "x-csrftoken"] = session ? cookie(session.csrf.cookie) : "";
    if (body !== undefined) headers["Content-Type"] = "application/json";
  }
  const response = await fetch("/api" + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let json = null;
  try { json = await response.json(); } catch { json = { detail: response.statusText }; }
  if (response.status === 401) notice(json.detail);
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
  state.textContent = ` — ${run.open_tasks} open task(s), ${run.waiting_instances} waiting ` +
    `instance(s), ${run.ready_instances} ready to resume; resume: ${resume.status}` +
    (resume.queued ? " (another queued)" : "");
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
    const a = link(`#/task/${encodeURIComponent(task.run)}/${encodeURIComponent(task.id)}`, task.title);
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

async function loadTask(run, id) {
  const { ok, body } = await api(`/runs/${encodeURIComponent(run)}/tasks/${encodeURIComponent(id)}`);
  $("form-status").textContent = "";
  $("form-status").className = "";
  if (!ok) { $("task-title").textContent = "Task not found"; $("form-status").textContent = body.detail; $("task-form").hidden = true; return; }
  current = body;
  $("task-title").textContent = body.title;
  const meta = $("task-meta");
  meta.replaceChildren();
  const facts = [["Run", body.run], ["Node / step", `${body.node} / ${body.step}`], ["Instance", String(body.instance_id)],
    ["Assignee", body.assignee || "—"], ["Waiting since", new Date(body.created_at * 1000).toLocaleString()]];
  if (body.due_at) facts.push(["Due", new Date(body.due_at * 1000).toLocaleString()]);
  for (const [k, v] of Object.entries(body.context || {})) facts.push([k, JSON.stringify(v)]);
  for (const [k, v] of facts) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    meta.append(dt, dd);
  }
  $("task-form").hidden = false;
  $("json-mode").checked = false;
  $("json-editor").hidden = true;
  $("fields").hidden = false;
  form = new GeneratedForm($("fields"), body.form_schema);
  if (body.completed_at) taken(body.completed_by);
  else $("submit").disabled = false;
  const first = $("fields").querySelector("input, select, textarea");
  (first || $("task-title")).focus();
}

function taken(by) {
  $("form-status").className = "taken";
  $("form-status").textContent = `This task was already completed by ${by || "someone"}.`;
  $("submit").disabled = true;
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
    toast(`completed: ${current.title} (instance ${current.instance_id})`);
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
    taken(body.completed_by);
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

async function render() {
  const { parts, params } = route();
  const onTask = parts[0] === "task" && parts.length === 3;
  $("inbox-view").hidden = onTask;
  $("task-view").hidden = !onTask;
  if (onTask) {
    current = null;  // never show (or submit) the previous task while this one loads
    $("task-title").textContent = "Loading…";
    $("task-meta").replaceChildren();
    $("fields").replaceChildren();
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
    location.hash = "#/";
  } else if (!typing && event.key === "/") {
    event.preventDefault();
    $("assignee").focus();
  } else if (!typing && (event.key === "j" || event.key === "k")) {
    moveSelection(event.key === "j" ? 1 : -1);
  }
}

async function start() {
  const { ok, body } = await api("/session");
  if (!ok) return;
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
  window.addEventListener("hashchange", render);
  await render();
}

start();
