// taskgate operator dashboard: renders /dashboard/api/* (session cookie) and refreshes itself.
"use strict";
const REFRESH_MS = 2000;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fillRows(id, rows, cells) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows.map((row) => {
    const tr = el("tr");
    for (const [key, value, cls] of cells(row)) {
      const td = el("td", value, cls);
      td.dataset.key = key;
      tr.append(td);
    }
    return tr;
  }));
}

function seconds(s) {
  if (!s) return "0 s";
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function taskLink(id) {
  const a = el("a", id);
  a.href = `/dashboard/task/${encodeURIComponent(id)}`;
  return a;
}

async function api(path) {
  const resp = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (resp.status === 401) { location.href = "/dashboard/login"; throw new Error("logged out"); }
  const body = await resp.json();
  if (body.code !== 200) throw new Error(body.message);
  return body.data;
}

function renderOverview(d) {
  fillRows("lanes", Object.entries(d.lanes), ([lane, v]) => [
    ["lane", lane], [`pending-${lane}`, v.pending, "num"], [`oldest-${lane}`, seconds(v.oldest_age_s), "num"]]);
  fillRows("pending", d.pending, (r) => [["lane", r.lane], ["pool", r.pool], ["plan", r.plan], ["tasks", r.tasks, "num"]]);
  fillRows("plans", d.plans, (p) => [["plan", p.plan], [`running-${p.plan}`, p.running, "num"], ["cap", p.cap_per_user, "num"]]);
  fillRows("accounts", d.accounts, (a) => [
    ["account", a.id], ["owner", a.owner], ["state", a.state, `state-${a.state}`], ["reason", a.reason],
    [`slots-${a.id}`, `${a.running} / ${a.capacity}`, "num"], [`errors-${a.id}`, a.errors, "num"]]);
  const units = new Set([...Object.keys(d.frozen), ...Object.keys(d.credits_flow.units)]);
  fillRows("credits", [...units].sort(), (u) => {
    const f = d.credits_flow.units[u] || { consumed: 0, refunded: 0, penalised: 0 };
    return [["unit", u], [`frozen-${u}`, d.frozen[u] || 0, "num"], [`consumed-${u}`, f.consumed, "num"],
      [`refunded-${u}`, f.refunded, "num"], [`penalised-${u}`, f.penalised, "num"]];
  });
  document.getElementById("webhook-backlog").textContent = d.webhook_backlog;
  document.getElementById("webhook-oldest").textContent = seconds(d.webhook_oldest_age_s);
  const body = document.querySelector("#failed tbody");
  body.replaceChildren(...d.recent_failed.map((t) => {
    const tr = el("tr");
    const first = el("td");
    first.append(taskLink(t.task_id));
    first.dataset.key = "task";
    tr.append(first, el("td", t.model), el("td", t.user_id), el("td", t.ended_at), el("td", t.error));
    tr.lastChild.dataset.key = `reason-${t.task_id}`;
    return tr;
  }));
}

function fillList(id, pairs) {
  const dl = document.getElementById(id);
  dl.replaceChildren(...pairs.flatMap(([k, v]) => {
    const dd = el("dd", typeof v === "object" && v !== null ? JSON.stringify(v) : v);
    dd.dataset.key = k;
    return [el("dt", k), dd];
  }));
}

function renderTask(d) {
  const s = d.summary;
  document.getElementById("task-id").textContent = s.task_id;
  fillList("task-summary", [["status", s.status], ["outcome", s.outcome], ["user", s.user_id],
    ["model", `${s.model} / ${s.task_type}`], ["lane", s.lane], ["pool", s.pool], ["created", s.created_at],
    ["started", s.started_at], ["ended", s.ended_at], ["usage", `${s.consume} of ${s.frozen} ${s.unit}`],
    ["error", s.error], ["output", d.task.output]]);
  const a = d.attempts;
  fillList("task-attempts", [["attempts", a.count], ["account", a.account_id], ["failed accounts", a.failed_accounts.join(", ")],
    ["upstream id", a.upstream_id], ["dispatched", a.dispatched_at], ["failover", a.failover]]);
  fillRows("task-ledger", d.ledger, (e) => [["ts", new Date(Number(e.ts)).toISOString()], ["kind", e.kind],
    ["unit", e.unit], [`amount-${e.kind}`, e.amount, "num"], ["available", e.available, "num"],
    ["frozen", e.frozen, "num"], ["consumed", e.consumed, "num"]]);
  fillRows("task-webhooks", d.webhook.attempts, (w) => [["at", w.at ? new Date(Number(w.at)).toISOString() : ""], ["result", w.result],
    ["status", w.status], ["task_status", w.task_status], ["error", w.error]]);
}

function stamp(ok, text) {
  const u = document.getElementById("updated");
  u.textContent = text;
  u.dataset.status = ok ? "ok" : "error";
}

async function refresh() {
  const match = location.pathname.match(/^\/dashboard\/task\/([^/]+)$/);
  try {
    if (match) {
      document.getElementById("overview-view").hidden = true;
      document.getElementById("task-view").hidden = false;
      renderTask(await api(`/dashboard/api/tasks/${match[1]}`));
    } else {
      renderOverview(await api("/dashboard/api/overview"));
    }
    stamp(true, `updated ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    if (match) document.getElementById("task-error").textContent = err.message;
    stamp(false, `error: ${err.message}`);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = document.getElementById("search-input").value.trim();
    if (id) location.href = `/dashboard/task/${encodeURIComponent(id)}`;
  });
  refresh();
  setInterval(refresh, REFRESH_MS);
});
