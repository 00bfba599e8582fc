// vmgrid dashboard panels beyond the present: history charts (uPlot, vendored by make install),
// the VM card with its explanation, the timeline of plans, the operator policy, the N+1 view and
// the heaviest measured VM pairs.
// Loaded before app.js, whose helpers (el, api, state, $) it uses at call time. A panel whose
// endpoint answers 404 (a manager without that feature) stays hidden.
"use strict";

const HIDDEN_ON = new Set([404, 409, 501]);
const charts = {}; // key ("node:ID" or "vm:UUID") -> { box, plot, points }
const panelState = { vm: null, explain: null };

async function optional(path) {
  // The JSON of `path`, or null when the endpoint is not there (the panel then hides).
  const response = await fetch(API + path, { headers: { Authorization: `Bearer ${state.token}` } });
  if (HIDDEN_ON.has(response.status)) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((data.error && data.error.message) || `${response.status} ${response.statusText}`);
  return data;
}

function showPanel(id, shown) { $(id).hidden = !shown; }

// ---- history charts ---------------------------------------------------------------------------

function onScreen(box) {
  // Only charts on (or near) the screen are fetched: a cluster of hundreds of nodes costs a
  // few requests per refresh, not hundreds.
  if (!box.isConnected || box.hidden) return false;
  const r = box.getBoundingClientRect();
  return r.bottom > -200 && r.top < window.innerHeight + 200;
}
let scrollTimer = null;
window.addEventListener("scroll", () => {
  clearTimeout(scrollTimer);
  scrollTimer = setTimeout(() => {
    for (const [key, chart] of Object.entries(charts)) if (!chart.plot && onScreen(chart.box)) loadChart(key);
  }, 200);
}, { passive: true });
const chartResizer = "ResizeObserver" in window ? new ResizeObserver((entries) => {
  for (const e of entries) {
    const chart = charts[e.target.dataset.chart];
    const width = Math.floor(e.contentRect.width);
    if (chart && chart.plot && width > 0 && Math.abs(chart.plot.width - width) > 1) chart.plot.setSize({ width, height: chart.plot.height });
  }
}) : null;

function chartBox(key) {
  // The chart's element for `key`, kept across re-renders so the plot survives a refresh.
  let chart = charts[key];
  if (!chart) {
    const box = el("div", { class: "chart", "data-chart": key, "data-points": "0" });
    chart = charts[key] = { box, plot: null, points: 0 };
    if (chartResizer) chartResizer.observe(box);
  }
  return chart.box;
}

const clock = (s, span) => new Date(s * 1000).toLocaleTimeString([], span > 900 ? { hour: "2-digit", minute: "2-digit" } : { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const fmtPct = (u, v) => (v == null ? "-" : `${v.toFixed(0)}%`);
const fmtRate = (u, v) => (v == null ? "-" : rate(v));

function seriesFor(key, history) {
  // [labels and options, values] of a node's or a VM's chart, in percent and bytes per second.
  const s = history.series;
  const sum = (a, b) => a.map((v, i) => (v == null || b[i] == null ? null : v + b[i]));
  const scaled = (a, f) => a.map((v) => (v == null ? null : v * f));
  const out = [];
  if (key.startsWith("node:")) {
    const node = state.nodes.find((n) => `node:${n.id}` === key);
    const cpuCap = node ? Math.max(1, node.capacity.cpu_millicores) : 1;
    out.push([{ label: "CPU", stroke: "#2563eb", scale: "%", value: fmtPct }, scaled(s.cpu_used_millicores, 100 / cpuCap)]);
    const total = s.memory_total_bytes || s.memory_used_bytes.map(() => (node ? node.capacity.memory_bytes : null));
    out.push([{ label: "mem", stroke: "#16a34a", scale: "%", value: fmtPct }, s.memory_used_bytes.map((v, i) => (v == null || !total[i] ? null : (100 * v) / total[i]))]);
  } else {
    const vm = state.vms.find((v) => `vm:${v.uuid}` === key);
    const cpuCap = vm && vm.vcpus ? vm.vcpus * 1000 : 1000;
    const memCap = vm && vm.memory_allocated_bytes ? vm.memory_allocated_bytes : null;
    out.push([{ label: "CPU", stroke: "#2563eb", scale: "%", value: fmtPct }, scaled(s.cpu_used_millicores, 100 / cpuCap)]);
    if (memCap) out.push([{ label: "mem", stroke: "#16a34a", scale: "%", value: fmtPct }, scaled(s.memory_used_bytes, 100 / memCap)]);
  }
  out.push([{ label: "net", stroke: "#d97706", scale: "B/s", value: fmtRate }, sum(s.net_rx_bytes_per_second || [], s.net_tx_bytes_per_second || [])]);
  // Pressure (PSI some avg10, % of the last 10 s stalled): only the resources the agent reads;
  // a point it could not read is null (a gap), never 0.
  const palette = ["#7c3aed", "#db2777", "#0891b2", "#65a30d"];
  Object.keys(s).filter((name) => name.startsWith("pressure_") && s[name].some((v) => v != null)).forEach((name, i) => {
    const label = `PSI ${name.replace(/^pressure_/, "").replace(/_some_avg10$/, "")}`;
    out.push([{ label, stroke: palette[i % palette.length], scale: "%", value: fmtPct, dash: [4, 3] }, s[name]]);
  });
  return out;
}

function drawChart(key, history) {
  const chart = charts[key];
  if (!chart) return;
  const times = history.times_unix_ms.map((t) => t / 1000);
  const series = seriesFor(key, history);
  const data = [times, ...series.map(([, values]) => values)];
  chart.points = times.length;
  chart.box.dataset.points = String(times.length);
  chart.box.dataset.last = String(history.times_unix_ms[times.length - 1] || 0);
  chart.box.title = `${history.buckets} means over ${history.bucket_s} s, then ${times.length - history.buckets} recent samples`;
  if (typeof uPlot === "undefined") {
    chart.box.replaceChildren(el("p", { class: "muted" }, "charts need the vendored uPlot (make install)"));
    return;
  }
  const labels = series.map(([opts]) => opts.label).join("|");
  if (chart.plot && chart.labels === labels) { chart.plot.setData(data); return; }
  if (chart.plot) chart.plot.destroy();
  chart.labels = labels;
  const width = Math.max(200, Math.floor(chart.box.clientWidth || 400));
  const opts = {
    width, height: 130,
    cursor: { drag: { x: false, y: false } },
    legend: { show: true },
    scales: { x: { time: true }, "%": { range: (u, min, max) => [0, Math.max(100, max || 0)] }, "B/s": { range: (u, min, max) => [0, Math.max(1024, max || 0)] } },
    series: [{ label: "time" }, ...series.map(([opts]) => ({ width: 1.5, spanGaps: false, ...opts }))],
    axes: [
      { size: 28, space: 70, incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600], font: "11px system-ui", grid: { stroke: "#eef1f5" }, values: (u, vals) => vals.map((v) => clock(v, u.scales.x.max - u.scales.x.min)) },
      { scale: "%", size: 48, font: "11px system-ui", values: (u, vals) => vals.map((v) => `${v}%`), grid: { stroke: "#eef1f5" } },
      { scale: "B/s", side: 1, size: 70, font: "11px system-ui", values: (u, vals) => vals.map((v) => rate(v)), grid: { show: false } },
    ],
  };
  chart.box.replaceChildren();
  chart.plot = new uPlot(opts, data, chart.box);
}

async function loadChart(key) {
  const [kind, id] = [key.slice(0, key.indexOf(":")), key.slice(key.indexOf(":") + 1)];
  try {
    const history = await optional(`/history?${kind}=${encodeURIComponent(id)}&minutes=60`);
    if (history === null) { charts[key].box.hidden = true; return; }
    drawChart(key, history);
  } catch (err) { charts[key].box.dataset.error = err.message; }
}

function refreshCharts() {
  for (const key of Object.keys(charts)) {
    if (!charts[key].box.isConnected) { // its node or VM is gone from the page
      if (chartResizer) chartResizer.unobserve(charts[key].box);
      if (charts[key].plot) charts[key].plot.destroy();
      delete charts[key];
    } else if (onScreen(charts[key].box)) loadChart(key);
  }
}

// ---- the VM card --------------------------------------------------------------------------------

function openVm(uuid) {
  panelState.vm = uuid; panelState.explain = null;
  renderVmCard();
  loadExplain();
  $("vm-card").scrollIntoView({ block: "nearest" });
}

async function loadExplain() {
  const uuid = panelState.vm;
  if (!uuid) return;
  try { panelState.explain = await optional(`/vms/${encodeURIComponent(uuid)}/explain`); }
  catch (err) { panelState.explain = { text: err.message }; }
  if (panelState.vm === uuid) renderVmCard();
}

function renderVmCard() {
  const vm = state.vms.find((v) => v.uuid === panelState.vm);
  if (!vm) { showPanel("vm-card", false); return; }
  showPanel("vm-card", true);
  const ex = panelState.explain;
  const facts = [["node", vm.node], ["state", vm.state], ["vCPUs", vm.vcpus ?? "-"], ["CPU", `${cores(vm.cpu_used_millicores)} cores`],
    ["memory", mib(vm.memory_allocated_bytes || 0)], ["net", rate((vm.net_rx_bytes_per_second || 0) + (vm.net_tx_bytes_per_second || 0))]];
  for (const [k, v] of Object.entries(vm)) if (k.includes("pressure") && v !== null && v !== undefined) facts.push(...flatten(v, k).map(([name, value]) => [name.replace(/_/g, " "), value]));
  const explain = ex ? el("div", { class: "explain", "data-explain": vm.uuid },
    el("p", {}, ex.text || ""),
    ex.last_action ? el("p", { class: "muted" }, "last moved: ", typeof ex.last_action === "string" ? ex.last_action : JSON.stringify(ex.last_action)) : null,
    ex.next ? el("p", { class: "muted" }, "next: ", typeof ex.next === "string" ? ex.next : JSON.stringify(ex.next)) : null,
    ex.rules && ex.rules.length ? el("p", { class: "muted" }, "rules: ", ex.rules.map((r) => (typeof r === "string" ? r : r.id || JSON.stringify(r))).join(", ")) : null) : null;
  $("vm-card-body").replaceChildren(
    el("div", { class: "vm-card-head" }, el("h3", {}, vm.name), el("span", { class: "muted", title: vm.uuid }, vm.uuid.slice(0, 8)),
      el("button", { "data-action": "close-vm", onclick: () => { panelState.vm = null; showPanel("vm-card", false); } }, "Close")),
    el("dl", { class: "facts" }, ...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    ...(explain ? [explain] : []), chartBox(`vm:${vm.uuid}`));
  const key = `vm:${vm.uuid}`;
  if (!charts[key].plot) setTimeout(() => loadChart(key), 0);
}

// ---- timeline, policy, N+1 ----------------------------------------------------------------------

function progressBar(fraction) {
  return el("span", { class: "progress" }, el("i", { style: `width:${pct(fraction || 0)}` }));
}

function actionItem(a) {
  return el("li", { "data-action-state": a.state },
    el("span", { class: `tag action-${a.state}` }, a.state), " ",
    el("b", {}, a.kind), ` ${a.name} ${a.src || "-"} → ${a.dst || "-"} `,
    a.state === "running" ? progressBar(a.progress) : null,
    a.simulated ? el("span", { class: "tag sim" }, "simulated") : null,
    a.reason ? el("div", { class: "reason" }, a.reason) : null,
    a.message ? el("div", { class: "muted" }, a.message) : null);
}

const unfolded = new Set(); // plans whose folded actions the operator opened (kept on refresh)
function timelineActions(planId, actions) {
  // A long plan shows its running and first actions; the rest fold under "N more".
  const SHOWN = 4;
  if (actions.length <= SHOWN + 1) return [el("ul", { class: "tl-actions" }, ...actions.map(actionItem))];
  const first = [...actions].sort((a, b) => (b.state === "running") - (a.state === "running")).slice(0, SHOWN);
  const rest = actions.filter((a) => !first.includes(a));
  return [el("ul", { class: "tl-actions" }, ...first.map(actionItem)),
    el("details", { class: "tl-more", open: unfolded.has(planId), ontoggle: (ev) => { if (ev.target.open) unfolded.add(planId); else unfolded.delete(planId); } }, el("summary", {}, `${rest.length} more actions`), el("ul", { class: "tl-actions" }, ...rest.map(actionItem)))];
}

function renderTimeline(timeline) {
  showPanel("timeline-panel", timeline !== null);
  if (!timeline) return;
  if (!timeline.plans.length) { $("timeline").replaceChildren(el("p", { class: "muted" }, "No plan yet.")); return; }
  const items = timeline.plans.map((p) => el("li", { "data-timeline-plan": p.id, "data-status": p.status },
    el("div", { class: "tl-head" },
      el("time", {}, p.created_unix_ms ? new Date(p.created_unix_ms).toLocaleTimeString() : ""),
      el("span", { class: `tag plan-${p.status}` }, p.status.replace(/_/g, " ")),
      el("b", {}, p.id), p.cluster ? el("span", { class: "muted" }, p.cluster) : null,
      progressBar(p.progress), el("span", { class: "muted" }, pct(p.progress))),
    el("div", { class: "tl-summary" }, p.summary),
    ...timelineActions(p.id, p.actions)));
  $("timeline").replaceChildren(el("ol", { class: "timeline" }, ...items));
}

function flatten(value, prefix = "", out = []) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.push([prefix, Array.isArray(value) ? value.join(", ") : String(value)]);
  return out;
}

function renderPolicy(policy) {
  showPanel("policy-panel", policy !== null);
  if (!policy) return;
  const rows = flatten(policy).map(([k, v]) => el("tr", { "data-policy": k }, el("th", {}, k.replace(/_/g, " ")), el("td", {}, v)));
  $("policy").replaceChildren(el("table", { class: "kv" }, ...rows));
}

function renderNPlusOne(report) {
  showPanel("n1-panel", report !== null);
  if (!report) return;
  $("n1-verdict").className = `tag ${report.ok ? "rule-holds" : "rule-violated"}`;
  $("n1-verdict").textContent = report.ok ? "every node can be lost" : "a node loss would strand VMs";
  const head = el("tr", {}, ...["if this node is lost", "", "its VMs", "not placed", "why"].map((h) => el("th", {}, h)));
  const rows = (report.nodes || []).map((n) => el("tr", { "data-n1-node": n.node, "data-ok": String(n.ok) },
    el("td", {}, el("b", {}, n.node)), el("td", {}, el("span", { class: `tag ${n.ok ? "rule-holds" : "rule-violated"}` }, n.ok ? "ok" : "short")),
    el("td", {}, Array.isArray(n.vms) ? n.vms.length : n.vms), el("td", {}, (n.unplaced || []).join(", ") || "-"),
    el("td", { class: "muted wrap" }, n.reason || "")));
  $("n1").replaceChildren(el("table", {}, head, ...rows));
}

function trafficEnd(vm, name, node, cluster, showCluster) {
  const where = [node, showCluster ? cluster : ""].filter(Boolean).join(" · ");
  return el("td", {}, el("b", { title: vm }, name || vm.slice(0, 8)), where ? el("div", { class: "muted" }, where) : null);
}

function renderTraffic(traffic) {
  // Hidden until something is measured: no pair, no external flow.
  const shown = traffic !== null && (traffic.pairs.length > 0 || traffic.external.length > 0);
  showPanel("traffic-panel", shown);
  if (!shown) return;
  const grid = state.kind === "coordinator";
  const crossing = { none: "same node", node: "across nodes", cluster: "across clusters", unknown: "?" };
  const head = el("tr", {}, ...["VM", "VM", "traffic", "crosses"].map((h) => el("th", {}, h)));
  const rows = traffic.pairs.map((p) => el("tr", { "data-traffic-pair": `${p.vm_a} ${p.vm_b}`, "data-crosses": p.crosses },
    trafficEnd(p.vm_a, p.name_a, p.node_a, p.cluster_a, grid), trafficEnd(p.vm_b, p.name_b, p.node_b, p.cluster_b, grid),
    el("td", {}, rate(p.bytes_per_second)),
    el("td", {}, el("span", { class: `tag crosses-${p.crosses}` }, crossing[p.crosses] || p.crosses))));
  const parts = [el("table", {}, head, ...rows)];
  if (traffic.external.length) {
    parts.push(el("h3", {}, "Peers outside the cluster ", el("small", {}, "reported to the coordinator, which resolves them")));
    parts.push(el("table", {}, el("tr", {}, ...["VM", "peer", "traffic"].map((h) => el("th", {}, h))),
      ...traffic.external.map((f) => el("tr", { "data-traffic-external": f.vm },
        trafficEnd(f.vm, f.name, f.node, "", false), el("td", {}, f.peer_ip || f.peer_mac), el("td", {}, rate(f.bytes_per_second))))));
  }
  if (traffic.unavailable.length) {
    parts.push(el("p", { class: "muted" }, `Not measured on ${traffic.unavailable.map((u) => u.node).join(", ")}: ${traffic.unavailable[0].reason}`));
  }
  $("traffic").replaceChildren(...parts);
}

async function refreshPanels() {
  const [timeline, policy, n1, traffic] = await Promise.all([
    optional("/timeline?limit=20").catch(() => null),
    optional("/policy").catch(() => null),
    optional("/capacity/n-plus-one").catch(() => null),
    optional("/traffic?limit=10").catch(() => null)]);
  renderTimeline(timeline); renderPolicy(policy); renderNPlusOne(n1); renderTraffic(traffic);
  showPanel("side-panels", policy !== null || n1 !== null);
  $("timeline-panel").classList.toggle("wide", policy === null && n1 === null);
  renderVmCard();
  if (panelState.vm) loadExplain();
  refreshCharts();
}

// ---- login link ----------------------------------------------------------------------------------

function tokenFromLink() {
  // http://host:port/#token=SECRET logs in: the token is kept for this tab's session and taken
  // out of the address bar (and so out of the history and of bookmarks).
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (!token) return "";
  sessionStorage.setItem("vmgrid-token", token);
  history.replaceState(null, "", location.pathname + location.search);
  return token;
}
