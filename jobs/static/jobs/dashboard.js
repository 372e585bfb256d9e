/**
 * The admin's jobs dashboard: draws the figures of jobs/dashboard.py with uPlot,
 * and fetches them again every few seconds (no page reload).
 *
 * Data comes from the page (`#dash-data`, rendered with it) and then from the
 * JSON endpoint named by the container's `data-url`. Every text is set with
 * textContent: kinds, codes and messages are never read as HTML.
 */
(function () {
  "use strict";

  const root = document.querySelector(".jobs-dashboard");
  if (!root || typeof uPlot === "undefined") return;
  const dataUrl = root.dataset.url;
  const refreshMs = Number(root.dataset.refreshSeconds || 5) * 1000;
  const COLOURS = { completed: "#198754", failed: "#dc3545", cancelled: "#b36b00", due: "#0d6efd", pending: "#6c757d", processing: "#6f42c1" };
  const charts = {};
  // Queue points seen by this page between the server's one-a-minute samples.
  let livePoints = [];
  let refreshes = 0;

  function seconds(value) {
    if (value === null || value === undefined) return "–";
    if (value < 1) return `${Math.round(value * 1000)} ms`;
    if (value < 60) return `${value.toFixed(1)} s`;
    if (value < 3600) return `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
    return `${Math.floor(value / 3600)} h ${Math.round((value % 3600) / 60)} min`;
  }

  function element(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    Object.entries(attrs || {}).forEach(([key, value]) => node.setAttribute(key, value));
    return node;
  }

  function link(text, href, attrs) {
    return element("a", text, { href, ...(attrs || {}) });
  }

  function cell(content, className) {
    const td = element("td", null, className ? { class: className } : {});
    if (content instanceof Node) td.append(content);
    else td.textContent = content;
    return td;
  }

  function fillBody(table, rows, empty, columns) {
    const body = document.querySelector(`${table} tbody`);
    body.replaceChildren(...(rows.length ? rows : [element("tr", null)]));
    if (!rows.length) body.firstChild.append(element("td", empty, { colspan: String(columns), class: "none" }));
  }

  // uPlot spreads a single point (a queue chart before any rollup) over
  // 86400 / 1e-3 seconds, years: show the five minutes before it instead.
  function timeRange(u, min, max) {
    const xs = u.data && u.data[0];
    return xs && xs.length === 1 ? [xs[0] - 300, xs[0] + 5] : [min, max];
  }

  function makeChart(id, series, yLabel) {
    const target = document.getElementById(id);
    const opts = {
      width: Math.max(320, target.clientWidth || 560),
      height: 220,
      scales: { x: { time: true, range: timeRange } },
      axes: [{}, { label: yLabel, size: 60 }],
      series: [{}, ...series.map(([label, colour]) => ({ label, stroke: colour, width: 2, points: { show: false } }))],
    };
    return new uPlot(opts, [[], ...series.map(() => [])], target);
  }

  function setupCharts() {
    const finished = [["completed", COLOURS.completed], ["failed", COLOURS.failed], ["cancelled", COLOURS.cancelled]];
    charts.hour = makeChart("chart-hour", finished, "jobs / min");
    charts.day = makeChart("chart-day", finished, "jobs / min");
    charts.queue = makeChart("chart-queue", [["due", COLOURS.due], ["pending", COLOURS.pending], ["running", COLOURS.processing]], "jobs");
    charts.oldest = makeChart("chart-oldest", [["oldest pending", COLOURS.due]], "seconds");
    window.addEventListener("resize", () => {
      Object.entries(charts).forEach(([name, chart]) => {
        const width = document.getElementById(`chart-${name}`).clientWidth;
        if (width) chart.setSize({ width, height: 220 });
      });
    });
  }

  function drawCharts(data) {
    const f = data.finished;
    const day = [f.minutes, f.completed, f.failed, f.cancelled];
    charts.day.setData(day);
    charts.hour.setData(day.map((values) => values.slice(-60)));
    // The server's samples end with "now": keep this page's earlier "now"s
    // that fall after its last stored sample, so the line moves every refresh.
    const q = data.queue;
    const n = q.at.length;
    const lastStored = n > 1 ? q.at[n - 2] : 0;
    livePoints = livePoints.filter((point) => point[0] > lastStored && point[0] < q.at[n - 1]);
    livePoints.push([q.at[n - 1], q.due[n - 1], q.pending[n - 1], q.processing[n - 1], q.oldest_pending_seconds[n - 1]]);
    const stored = q.at.slice(0, n - 1).map((at, i) => [at, q.due[i], q.pending[i], q.processing[i], q.oldest_pending_seconds[i]]);
    const points = [...stored, ...livePoints];
    const column = (i) => points.map((point) => point[i]);
    charts.queue.setData([column(0), column(1), column(2), column(3)]);
    charts.oldest.setData([column(0), column(4)]);
  }

  function drawCards(data) {
    const t = data.totals;
    document.querySelector("#dash-due .figure").textContent = t.due;
    document.querySelector("#dash-pending .figure").textContent = t.pending;
    document.querySelector("#dash-running .figure").textContent = t.processing;
    document.querySelector("#dash-oldest .figure").textContent = t.due ? seconds(t.oldest_pending_seconds) : "none";
  }

  function drawKinds(data) {
    const rows = data.kinds.map((k) => {
      const tr = element("tr", null, { "data-kind": k.kind });
      const rate = k.failure_rate === null ? "–" : `${(k.failure_rate * 100).toFixed(1)}%`;
      tr.append(
        cell(link(k.kind, k.links.kind)),
        cell(link(k.pending, k.links.pending, { "data-figure": "pending" }), "number"),
        cell(link(k.running, k.links.running, { "data-figure": "running" }), "number"),
        cell(link(k.finished_hour, k.links.finished_hour, { "data-figure": "finished_hour" }), "number"),
        cell(link(rate, k.links.failed_hour, { "data-figure": "failure_rate", title: `${k.failed_hour} failed` }), "number"),
        ...["wait_p50", "wait_p95", "run_p50", "run_p95"].map((key) =>
          cell(link(seconds(k[key]), k.links.finished_hour, { "data-figure": key }), "number"),
        ),
      );
      return tr;
    });
    fillBody("#dash-kinds", rows, "No kinds registered.", 9);
  }

  function drawClusters(data) {
    const rows = data.clusters.map((c) => {
      const workers = element("td");
      c.workers.forEach((w) => {
        const line = element("span", null, { class: "dash-worker" });
        line.append(link(`pid ${w.pid}`, w.url), ": ");
        if (!w.jobs.length) line.append(element("span", "idle", { class: "none" }));
        w.jobs.forEach((job, i) => {
          if (i) line.append(", ");
          line.append(link(`${job.kind} ${job.id.slice(0, 8)}`, job.url));
        });
        workers.append(line);
      });
      const tr = element("tr", null, { "data-cluster": c.id });
      tr.append(
        cell(c.host),
        cell(`pid ${c.pid}, ${c.busy}/${c.workers.length} busy`),
        cell(c.status),
        cell(`${new Date(c.last_seen).toLocaleTimeString()} (${c.seen_seconds_ago} s ago)`),
        cell(seconds(c.up_seconds)),
        workers,
      );
      return tr;
    });
    fillBody("#dash-clusters", rows, "No cluster is running.", 6);
  }

  function drawFailures(data) {
    const rows = data.failures.map((f) => {
      const tr = element("tr", null, { "data-job": f.id });
      tr.append(
        cell(new Date(f.finished_at).toLocaleString()),
        cell(link(f.id.slice(0, 8), f.url, { class: "dash-failure-link" })),
        cell(link(f.kind, f.kind_url)),
        cell(f.code ? link(f.code, f.code_url) : "–"),
        cell(f.message),
        cell(f.attempts, "number"),
      );
      return tr;
    });
    fillBody("#dash-failures", rows, "No job failed in the last 24 hours.", 6);
  }

  function draw(data) {
    drawCards(data);
    drawCharts(data);
    drawKinds(data);
    drawClusters(data);
    drawFailures(data);
    refreshes += 1;
    root.dataset.refreshes = String(refreshes);
    root.dataset.generatedAt = data.now;
    document.getElementById("dash-updated").textContent =
      `Updated ${new Date(data.now).toLocaleTimeString()} (every ${refreshMs / 1000} s)`;
  }

  function showError(message) {
    const note = document.getElementById("dash-error");
    note.textContent = message;
    note.hidden = !message;
  }

  async function refresh() {
    try {
      const response = await fetch(dataUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      const type = response.headers.get("Content-Type") || "";
      if (!response.ok || !type.includes("application/json")) {
        // The admin's login redirect answers with HTML: the session ended.
        showError(response.ok ? "Signed out: reload the page to sign in." : `Refresh failed (HTTP ${response.status}).`);
      } else {
        draw(await response.json());
        showError("");
      }
    } catch (error) {
      showError(`Refresh failed: ${error.message}`);
    } finally {
      setTimeout(refresh, refreshMs);
    }
  }

  setupCharts();
  draw(JSON.parse(document.getElementById("dash-data").textContent));
  setTimeout(refresh, refreshMs);
})();
