// vmgrid dashboard: reads /api/v1, follows /api/v1/events/stream, sends operator actions.
// Vanilla JS, no build step (panels.js: charts, timeline, policy, N+1; uPlot is vendored by make
// install). The token lives in sessionStorage and travels only as a header; a login link
// (#token=...) puts it there.
"use strict";
const API = "/api/v1";
const state = { token: tokenFromLink() || sessionStorage.getItem("vmgrid-token") || "", nodes: [], vms: [], migrations: {}, kind: "" };
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}
function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}
const pct = (x) => `${Math.round(100 * x)}%`;
const mib = (b) => b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${Math.round(b / 2 ** 20)} MiB`;
const rate = (bps) => bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} MB/s` : `${(bps / 1e3).toFixed(0)} kB/s`;
const cores = (mc) => `${(mc / 1000).toFixed(2)}`;

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, { method: options.method || "GET", headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((data.error && data.error.message) || `${response.status} ${response.statusText}`);
  return data;
}

async function act(path, body = {}) {
  try {
    showError("");
    await api(path, { method: "POST", body });
    scheduleRefresh(100);
  } catch (err) { showError(err.message); }
}

// ---- rendering ------------------------------------------------------------------------------

function bar(fraction) {
  const cls = fraction > 0.85 ? "hot" : fraction > 0.65 ? "warm" : "";
  return el("div", { class: "bar" }, el("i", { class: cls, style: `width:${Math.min(100, 100 * fraction)}%` }));
}

function renderSummary(clusters) {
  const vms = state.vms;
  const migrating = Object.keys(state.migrations).length;
  const cards = [
    ["clusters", clusters.length], ["nodes", state.nodes.length], ["VMs", vms.length],
    ["running", vms.filter((v) => v.state === "running").length],
    ["paused", vms.filter((v) => v.state === "paused").length], ["migrating", migrating],
  ];
  $("summary").replaceChildren(...cards.map(([k, v]) => el("div", { class: "card" }, el("b", {}, v), el("span", {}, k))));
}

function renderClusters(clusters) {
  const head = el("tr", {}, ...["cluster", "state", "nodes", "VMs", "CPU", "memory", "mode"].map((h) => el("th", {}, h)));
  const rows = clusters.map((c) => {
    const cpu = c.usage && c.capacity.cpu_millicores ? c.usage.cpu_millicores / c.capacity.cpu_millicores : 0;
    const mem = c.usage && c.capacity.memory_bytes ? c.usage.memory_bytes / c.capacity.memory_bytes : 0;
    return el("tr", {}, el("td", {}, el("b", {}, c.id)), el("td", {}, c.state), el("td", {}, c.nodes),
      el("td", {}, c.vms ?? "-"), el("td", {}, pct(cpu)), el("td", {}, pct(mem)), el("td", {}, c.automation || c.health || ""));
  });
  $("clusters").replaceChildren(head, ...rows);
}

function renderTopology(topo) {
  const box = $("topology");
  const W = 520, H = 300;
  const nodes = topo.nodes || [];
  const pos = {};
  const hubs = nodes.filter((n) => n.kind !== "node");
  const leaves = nodes.filter((n) => n.kind === "node");
  if (leaves.length && hubs.length === 1) {
    pos[hubs[0].id] = [W / 2, H / 2];
    leaves.forEach((n, i) => { const a = (2 * Math.PI * i) / leaves.length - Math.PI / 2; pos[n.id] = [W / 2 + 190 * Math.cos(a), H / 2 + 110 * Math.sin(a)]; });
  } else {
    nodes.forEach((n, i) => { const a = (2 * Math.PI * i) / Math.max(1, nodes.length) - Math.PI / 2; pos[n.id] = [W / 2 + 190 * Math.cos(a), H / 2 + 110 * Math.sin(a)]; });
  }
  const items = [];
  for (const l of topo.links || []) {
    const [x1, y1] = pos[l.source] || [0, 0], [x2, y2] = pos[l.target] || [0, 0];
    const u = l.utilisation || 0;
    const color = u > 0.85 ? "#dc2626" : u > 0.5 ? "#d97706" : "#16a34a";
    items.push(svg("line", { x1, y1, x2, y2, stroke: color, "stroke-width": 2 + 8 * u, "stroke-linecap": "round", opacity: 0.8 }));
    const label = svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, class: "label", "text-anchor": "middle" });
    label.textContent = `${pct(u)} of ${l.bandwidth_mbps >= 1000 ? (l.bandwidth_mbps / 1000).toFixed(0) + " Gb/s" : l.bandwidth_mbps + " Mb/s"}`;
    items.push(label);
  }
  for (const n of nodes) {
    const [x, y] = pos[n.id];
    const hub = n.kind !== "node";
    items.push(svg("circle", { cx: x, cy: y, r: hub ? 18 : 12, fill: hub ? "#0f172a" : "#2563eb" }));
    const t = svg("text", { x, y: y + (hub ? 32 : 26), "text-anchor": "middle" });
    t.textContent = n.id;
    items.push(t);
  }
  box.replaceChildren(...items);
  $("topology-note").textContent = topo.note || "";
}

function renderPlans(plans) {
  const out = [];
  for (const p of plans.pending || []) {
    out.push(el("div", { class: "plan", "data-plan": p.id },
      el("b", {}, p.id), " ", el("span", { class: "muted" }, p.summary),
      el("ul", {}, ...(p.actions || []).map((a) => el("li", {}, a.description || `${a.kind} ${a.subject}`,
        a.reason && !(a.description || "").includes(a.reason) ? el("div", { class: "reason" }, a.reason) : null))),
      el("button", { class: "primary", onclick: () => act(`/plans/${p.id}/approve`) }, "Approve"), " ",
      el("button", { onclick: () => act(`/plans/${p.id}/reject`) }, "Reject")));
  }
  for (const r of plans.running || []) out.push(el("div", { class: "plan" }, el("b", {}, r.id), " running"));
  if (plans.grid_dry_run) out.push(el("div", { class: "plan" }, el("b", {}, "grid dry run "), `${plans.grid_dry_run.moves.length} moves`));
  $("plans").replaceChildren(...(out.length ? out : [el("p", { class: "muted" }, "No plan waits for approval.")]));
}

function memberWhere(m) {
  // The job keeps where its members were placed; after a node failure a member runs elsewhere.
  const vm = state.vms.find((v) => v.uuid === m.uuid);
  const node = vm ? vm.node : m.node;
  const moved = vm && m.node && vm.node !== m.node ? ` (was ${m.node})` : "";
  return `${m.name}${node ? "@" + node : ""}${moved}`;
}

function renderJobs(jobs) {
  if (!jobs.length) { $("jobs").replaceChildren(el("p", { class: "muted" }, "No job submitted yet (vmgridctl submit).")); return; }
  const head = el("tr", {}, ...["job", "state", "cluster", "members", "size", "message"].map((h) => el("th", {}, h)));
  const rows = jobs.map((j) => el("tr", { "data-job": j.id, "data-state": j.state },
    el("td", {}, el("b", {}, j.name), " ", el("span", { class: "muted", title: j.id }, j.id.slice(0, 8))),
    el("td", {}, el("span", { class: `tag job-${j.state}` }, j.state)),
    el("td", {}, j.cluster || "-"),
    el("td", {}, j.members.map(memberWhere).join(", ")),
    el("td", {}, `${j.members.length} × ${j.vcpus} vCPU, ${j.memory_mib} MiB`),
    el("td", { class: "muted" }, j.message)));
  $("jobs").replaceChildren(el("table", {}, head, ...rows));
}

function renderRules(rules) {
  if (!rules) {
    $("rules").replaceChildren(el("p", { class: "muted" }, "Rules are held by each cluster manager: open its dashboard."));
    $("rule-form").hidden = true;
    return;
  }
  $("rule-form").hidden = false;
  if (!rules.length) { $("rules").replaceChildren(el("p", { class: "muted" }, "No placement rule (add one below, or submit a job with rules).")); return; }
  const head = el("tr", {}, ...["rule", "kind", "origin", "VMs", "nodes", "parameters", "holds", ""].map((h) => el("th", {}, h)));
  const rows = rules.map((r) => el("tr", { "data-rule": r.id, "data-rule-state": r.state },
    el("td", {}, el("b", {}, r.id)), el("td", {}, r.kind), el("td", {}, r.origin),
    el("td", {}, (r.vm_names || r.vms).join(", ") || "-"), el("td", {}, r.nodes.join(", ") || "-"),
    el("td", { class: "muted" }, Object.keys(r.parameters).length ? JSON.stringify(r.parameters) : "-"),
    el("td", {}, el("span", { class: `tag rule-${r.state}`, title: r.reason }, r.state === "holds" ? "holds" : r.state),
      r.reason ? el("div", { class: "muted" }, r.reason) : null),
    el("td", {}, r.origin === "operator" ? el("button", { "data-action": "delete-rule", onclick: () => deleteRule(r.id) }, "Delete") : null)));
  $("rules").replaceChildren(el("table", {}, head, ...rows));
}

async function deleteRule(id) {
  try { showError(""); await api(`/rules/${encodeURIComponent(id)}`, { method: "DELETE" }); scheduleRefresh(50); }
  catch (err) { showError(err.message); }
}

const listOf = (text) => text.split(",").map((x) => x.trim()).filter(Boolean);
$("rule-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const text = $("rule-parameters").value.trim();
    let parameters = {};
    if (text) { try { parameters = JSON.parse(text); } catch (err) { throw new Error(`parameters are not JSON: ${text}`); } }
    showError("");
    await api("/rules", { method: "POST", body: { id: $("rule-id").value.trim(), kind: $("rule-kind").value, vms: listOf($("rule-vms").value), nodes: listOf($("rule-nodes").value), parameters } });
    for (const f of ["rule-id", "rule-vms", "rule-nodes", "rule-parameters"]) $(f).value = "";
    scheduleRefresh(50);
  } catch (err) { showError(err.message); }
});

function migrationCell(vm) {
  const m = state.migrations[vm.uuid] || vm.migration;
  if (!m) return null;
  return el("span", { class: "migration", "data-migrating": vm.uuid },
    el("span", { class: "tag migrating" }, `→ ${m.destination}`), " ",
    el("span", { class: "progress" }, el("i", { style: `width:${pct(m.progress || 0)}` })), ` ${pct(m.progress || 0)}`,
    m.simulated ? el("span", { class: "tag sim", title: "between test-driver nodes the migration is simulated" }, "simulated") : null);
}

function vmRow(vm) {
  const paused = vm.state === "paused";
  const actions = state.nodes.some((n) => n.id === vm.node) ? el("td", { class: "vm-actions" }, el("div", {},
    paused ? el("button", { "data-action": "resume", onclick: () => act(`/vms/${vm.uuid}/resume`) }, "Resume")
      : el("button", { "data-action": "suspend", onclick: () => act(`/vms/${vm.uuid}/suspend`) }, "Suspend"),
    el("button", { "data-action": "migrate", onclick: () => openMigrate(vm) }, "Migrate"),
    el("button", { "data-action": "snapshot", onclick: () => { const name = prompt(`Snapshot name for ${vm.name}`, `snap-${Date.now()}`); if (name) act(`/vms/${vm.uuid}/snapshot`, { name }); } }, "Snapshot"))) : el("td", {});
  return el("tr", { "data-vm": vm.uuid, "data-vm-name": vm.name, "data-state": vm.state },
    el("td", { class: "vm-name" }, el("a", { href: "#", "data-action": "open-vm", title: `history and explanation of ${vm.name}`, onclick: (ev) => { ev.preventDefault(); openVm(vm.uuid); } }, vm.name),
      vm.simulated ? el("span", { class: "tag sim", title: "test-driver VM" }, "sim") : null, migrationCell(vm)),
    el("td", {}, el("span", { class: `tag ${vm.state}` }, vm.state)),
    el("td", {}, cores(vm.cpu_used_millicores)), el("td", {}, mib(vm.memory_allocated_bytes)),
    el("td", {}, rate((vm.net_rx_bytes_per_second || 0) + (vm.net_tx_bytes_per_second || 0))), actions);
}

function renderNodes() {
  const byNode = {};
  for (const vm of state.vms) (byNode[vm.node] = byNode[vm.node] || []).push(vm);
  const cards = state.nodes.map((n) => {
    const u = n.usage;
    const cpu = u ? u.cpu_used_millicores / Math.max(1, n.capacity.cpu_millicores) : 0;
    const mem = u ? u.memory_used_bytes / Math.max(1, u.memory_total_bytes || n.capacity.memory_bytes) : 0;
    const netBps = u ? 8 * (u.net_rx_bytes_per_second + u.net_tx_bytes_per_second) : 0;
    const net = netBps / Math.max(1, n.capacity.nic_bandwidth_bps);
    const vms = byNode[n.id] || [];
    return el("div", { class: `node ${n.status}${n.draining ? " draining" : ""}`, "data-node": n.id },
      el("div", { class: "node-head" }, el("h3", {}, n.id), el("span", { class: "tag" }, n.status),
        n.draining ? el("span", { class: "tag paused" }, "draining") : null,
        n.degraded_reason ? el("span", { class: "tag degraded", title: n.degraded_reason }, "degraded") : null,
        n.simulated ? el("span", { class: "tag sim", title: "libvirt test driver" }, "simulated") : null,
        el("button", { "data-action": n.draining ? "undrain" : "drain", onclick: () => act(`/nodes/${n.id}/${n.draining ? "undrain" : "drain"}`) }, n.draining ? "Undrain" : "Drain")),
      n.degraded_reason ? el("p", { class: "degraded-reason" }, `degraded: ${n.degraded_reason}`) : null,
      el("div", { class: "bars" },
        el("span", {}, "CPU"), bar(cpu), el("span", {}, `${pct(cpu)} of ${cores(n.capacity.cpu_millicores)}`),
        el("span", {}, "mem"), bar(mem), el("span", {}, `${pct(mem)} of ${mib(n.capacity.memory_bytes)}`),
        el("span", {}, "net"), bar(net), el("span", {}, rate(netBps / 8))),
      pressureLine(n), chartBox(`node:${n.id}`),
      vms.length ? el("table", {}, el("tr", {}, ...["VM", "state", "cores", "memory", "net", ""].map((h) => el("th", {}, h))), ...vms.map(vmRow))
        : el("p", { class: "muted" }, "no VMs"));
  });
  $("nodes").replaceChildren(el("div", { class: "nodes" }, ...cards));
}

function pressureLine(n) {
  // Pressure-stall figures wherever the node's JSON carries them (absent: nothing shown).
  const found = [];
  for (const source of [n, n.usage || {}]) {
    for (const [k, v] of Object.entries(source)) if (k.includes("pressure") && v !== null && v !== undefined) found.push(...flatten(v, k));
  }
  if (!found.length) return null;
  return el("p", { class: "pressure muted" }, found.map(([k, v]) => `${k.replace(/_/g, " ")} ${v}`).join(" · "));
}

function eventItem(e) {
  const time = new Date(e.at_unix_ms).toLocaleTimeString();
  const where = [e.cluster, e.node].filter(Boolean).join("/");
  const vm = state.vms.find((v) => v.uuid === e.vm);
  return el("li", { "data-kind": e.kind }, el("time", {}, time), el("span", { class: "kind" }, e.kind), " ",
    where ? el("b", {}, where + " ") : null, vm && vm.name !== e.message ? `${vm.name} ` : "", e.message || "", e.simulated ? el("span", { class: "tag sim" }, "simulated") : null);
}

function addEvent(e) {
  const list = $("events");
  list.prepend(eventItem(e));
  while (list.children.length > 200) list.lastChild.remove();
}

// ---- loading and live updates -----------------------------------------------------------------

async function refresh() {
  const [nodes, vms, clusters, topology, plans, jobs, rules] = await Promise.all([
    api("/nodes"), api("/vms"), api("/clusters"), api("/topology"), api("/plans"), api("/jobs"),
    state.kind === "cluster" ? api("/rules") : Promise.resolve(null)]);
  state.nodes = nodes.nodes; state.vms = vms.vms;
  state.migrations = {};
  for (const m of plans.migrations || []) state.migrations[m.vm] = m;
  renderSummary(clusters.clusters); renderClusters(clusters.clusters); renderTopology(topology);
  renderPlans(plans); renderJobs(jobs.jobs); renderRules(rules && rules.rules); renderNodes();
  document.body.dataset.loaded = "true";
  refreshPanels().catch((err) => showError(err.message));
}

let refreshTimer = null;
function scheduleRefresh(delay = 400) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => refresh().catch((err) => showError(err.message)), delay);
}

async function follow() {
  // EventSource cannot send an Authorization header, so read the SSE stream through fetch.
  while (state.token) {
    try {
      const response = await fetch(`${API}/events/stream`, { headers: { Authorization: `Bearer ${state.token}` } });
      if (!response.ok) throw new Error(`event stream: ${response.status}`);
      $("live").className = "pill on"; $("live").textContent = "live";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const chunk = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          for (const line of chunk.split("\n")) if (line.startsWith("data: ")) onEvent(JSON.parse(line.slice(6)));
        }
      }
    } catch (err) { /* reconnect below */ }
    $("live").className = "pill off"; $("live").textContent = "reconnecting";
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function onEvent(e) {
  if (e.kind === "migration_progress") {
    state.migrations[e.vm] = e;
    const cell = document.querySelector(`[data-migrating="${CSS.escape(e.vm)}"]`);
    if (cell) cell.replaceWith(migrationCell({ uuid: e.vm }));
    else scheduleRefresh(100);
    return;
  }
  addEvent(e);
  scheduleRefresh();
}

// ---- migrate dialog and login -------------------------------------------------------------------

let migrating = null;
function openMigrate(vm) {
  migrating = vm;
  $("migrate-vm").textContent = `${vm.name} (on ${vm.node})`;
  const options = state.nodes.filter((n) => n.id !== vm.node && n.cluster === vm.cluster && n.status === "connected").map((n) => el("option", { value: n.id }, n.id));
  $("migrate-destination").replaceChildren(...options);
  $("migrate-dialog").showModal();
}
$("migrate-cancel").addEventListener("click", () => $("migrate-dialog").close());
$("migrate-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  $("migrate-dialog").close();
  if (migrating) act(`/vms/${migrating.uuid}/migrate`, { destination: $("migrate-destination").value });
});

async function connect() {
  try {
    const info = await fetch(`${API}/info`).then((r) => r.json());
    state.kind = info.kind; $("kind").textContent = info.kind === "cluster" ? "· cluster manager" : "· grid coordinator";
    await refresh();
    showError("");
    const events = await api("/events?limit=100");
    $("events").replaceChildren(...events.events.reverse().map(eventItem));
    follow();
    setInterval(() => refresh().catch(() => {}), 5000);
  } catch (err) { showError(err.message); }
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem("vmgrid-token", state.token);
  connect();
});
if (state.token) { $("token").value = state.token; connect(); } else showError("Open the login link that vmgrid-demo prints, or type the API token and press Connect.");
