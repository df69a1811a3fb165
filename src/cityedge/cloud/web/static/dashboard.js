// cityedge dashboard: table sorting, district map, charts, and live updates (Server-Sent Events).
// No framework and nothing from a CDN: the control plane serves this file.
"use strict";
(function () {
  const HEALTH = { offline: 0, stale: 1, unknown: 2, online: 3 };
  const STATUSES = ["online", "stale", "offline", "unknown"];
  const $ = (sel) => document.querySelector(sel);
  const json = (id) => { const el = document.getElementById(id); return el ? JSON.parse(el.textContent) : null; };
  const svgEl = (name, attrs) => {
    const el = document.createElementNS("http://www.w3.org/2000/svg", name);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    return el;
  };

  // -- the fleet table: click a header to sort (health = worst first) ---------------------------
  function sortTable(table, th, dir) {
    const key = th.dataset.key, type = th.dataset.type || "text";
    const body = table.tBodies[0];
    const value = (row) => {
      const raw = row.dataset[key] || "";
      if (type === "health") return [HEALTH[raw] ?? 9, -Number(row.dataset.alerts || 0)];
      if (type === "num") return [raw === "" ? Infinity : Number(raw), 0];
      return [raw, 0];
    };
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const [x1, x2] = value(a), [y1, y2] = value(b);
      const c = x1 < y1 ? -1 : x1 > y1 ? 1 : x2 - y2;
      return dir * (c || a.dataset.node.localeCompare(b.dataset.node));
    });
    rows.forEach((r) => body.appendChild(r));
    table.querySelectorAll("th").forEach((h) => h.classList.remove("asc", "desc"));
    th.classList.add(dir > 0 ? "asc" : "desc");
  }
  document.querySelectorAll("table.sortable").forEach((table) => {
    table.querySelectorAll("th[data-key]").forEach((th) => {
      th.addEventListener("click", () => sortTable(table, th, th.classList.contains("asc") ? -1 : 1));
    });
  });

  // -- the district map from inventory coordinates ----------------------------------------------
  function drawMap() {
    const svg = $("#map"), nodes = json("map-data");
    if (!svg || !nodes || !nodes.length) return;
    const lats = nodes.map((n) => n.lat), lons = nodes.map((n) => n.lon);
    const [la0, la1, lo0, lo1] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
    const sx = (lon) => 20 + 360 * (lo1 > lo0 ? (lon - lo0) / (lo1 - lo0) : 0.5);
    const sy = (lat) => 280 - 260 * (la1 > la0 ? (lat - la0) / (la1 - la0) : 0.5);
    for (const n of nodes) {
      const c = svgEl("circle", { cx: sx(n.lon), cy: sy(n.lat), r: 7, class: n.status, "data-node": n.node });
      const title = svgEl("title"); title.textContent = `${n.node}: ${n.status}`; c.appendChild(title);
      c.addEventListener("click", () => { location.href = `/ui/nodes/${encodeURIComponent(n.node)}`; });
      svg.appendChild(c);
    }
  }

  // -- charts on the node page ---------------------------------------------------------------------
  function chart(svg, series, pick, limit) {
    if (!svg) return;
    svg.replaceChildren();
    const points = [];
    const cams = new Set();
    series.forEach((s) => Object.keys(s.cameras || {}).forEach((c) => cams.add(c)));
    const values = [];
    cams.forEach((cam) => series.forEach((s) => { const v = pick((s.cameras || {})[cam]); if (v != null) values.push(v); }));
    if (!values.length) { const t = svgEl("text", { x: 10, y: 60 }); t.textContent = "no data yet"; svg.appendChild(t); return; }
    const max = Math.max(...values, limit || 0) * 1.1 || 1;
    const x = (i) => 30 + (360 * i) / Math.max(1, series.length - 1);
    const y = (v) => 110 - (100 * v) / max;
    const colors = ["#2b6cb0", "#b7791f", "#2f855a", "#9b2c2c", "#553c9a"];
    Array.from(cams).forEach((cam, k) => {
      const pts = series.map((s, i) => { const v = pick((s.cameras || {})[cam]); return v == null ? null : `${x(i)},${y(v)}`; }).filter(Boolean);
      points.push(pts.length);
      svg.appendChild(svgEl("polyline", { points: pts.join(" "), stroke: colors[k % colors.length], "data-camera": cam }));
    });
    if (limit) svg.appendChild(svgEl("line", { x1: 30, x2: 390, y1: y(limit), y2: y(limit), stroke: "#c2262e", "stroke-dasharray": "4 3" }));
    const top = svgEl("text", { x: 2, y: 12 }); top.textContent = max.toFixed(0); svg.appendChild(top);
  }
  const series = json("series");
  function drawCharts() {
    if (!series) return;
    chart($("#chart-fps"), series, (c) => c && c.fps);
    const lat = $("#chart-latency");
    chart(lat, series, (c) => c && c.p95_ms, lat ? Number(lat.dataset.slo) : 0);
  }

  // -- live updates ---------------------------------------------------------------------------------
  function setStatus(node, status, reason) {
    document.querySelectorAll(`[data-node="${CSS.escape(node)}"]`).forEach((el) => {
      if (el.tagName === "circle") { el.setAttribute("class", status); return; }
      el.dataset.health = status;
      const badge = el.querySelector('[data-role="status"]') || (el.id === "node" ? $("#node-status") : null);
      if (badge) { badge.textContent = status; badge.className = `status ${status}`; }
    });
    if ($("#node") && $("#node").dataset.node === node && $("#node-reason")) $("#node-reason").textContent = reason;
    if ($("#count-online")) {
      STATUSES.forEach((s) => {
        const n = document.querySelectorAll(`#fleet tbody tr[data-health="${s}"]`).length;
        $(`#count-${s}`).textContent = n;
      });
    }
  }
  function prepend(list, html, cls) {
    if (!list) return;
    const li = document.createElement("li");
    li.className = `fresh ${cls || ""}`;
    li.append(...html);
    list.prepend(li);
    while (list.children.length > 100) list.lastChild.remove();
  }
  const text = (s) => document.createTextNode(s);
  const bold = (s) => { const b = document.createElement("b"); b.textContent = s; return b; };
  const when = (iso) => { const t = document.createElement("time"); t.textContent = String(iso).slice(11, 19); return t; };

  function connect() {
    const c = json("cursors");
    if (!c) return;
    const node = $("#node") ? $("#node").dataset.node : null;
    const q = new URLSearchParams({ t: c.t, e: c.e, a: c.a });
    if (node) q.set("node", node);
    const live = $("#live-state");
    const es = new EventSource(`/ui/live?${q}`);
    es.onopen = () => live && live.classList.replace("off", "on");
    es.onerror = () => live && live.classList.replace("on", "off");
    es.addEventListener("status", (ev) => {
      const t = JSON.parse(ev.data);
      setStatus(t.node, t.after, t.reason);
      prepend($("#history"), [when(t.at), text(` ${t.before} → `), bold(t.after), text(` ${t.reason}`)]);
    });
    es.addEventListener("incident", (ev) => {
      const e = JSON.parse(ev.data);
      const cam = e.body && e.body.camera ? `/${e.body.camera}` : "";
      prepend($("#incidents"), [when(e.ts), text(" "), bold(e.kind), text(` ${e.node}${cam}`)]);
    });
    es.addEventListener("alert", (ev) => {
      const a = JSON.parse(ev.data);
      const list = $("#alerts");
      if (!list) return;
      const key = `${a.alert}|${a.node}|${a.subject}`;
      list.querySelectorAll("li").forEach((li) => { if (li.dataset.key === key || li.id === "no-alerts") li.remove(); });
      if (a.state === "firing") {
        prepend(list, [bold(a.alert), text(` ${a.summary}`)], a.severity);
        list.firstChild.dataset.key = key;
      }
    });
    es.addEventListener("heartbeat", (ev) => {
      if (!series) return;
      const b = JSON.parse(ev.data);
      series.push({ ts: b.ts, cameras: b.cameras || {} });
      if (series.length > 720) series.shift();
      drawCharts();
    });
  }

  drawMap();
  drawCharts();
  connect();
})();
