// Credit history chart. ECharts comes from js/echarts-global.js (a PyPI package's ESM build,
// served locally: no CDN, no inline script under the CSP); this file is loaded as a module after it.
(function () {
  "use strict";
  function draw() { document.querySelectorAll("[data-credit-history]").forEach(render); }
  if (typeof window.echarts === "undefined") {
    window.addEventListener("echarts:ready", draw, { once: true });
  } else {
    draw();
  }
  function render(el) {
    if (el.getAttribute("data-chart-ready")) { return; }
    el.setAttribute("data-chart-ready", "1");
    var history;
    try { history = JSON.parse(el.getAttribute("data-credit-history") || "[]"); } catch (e) { history = []; }
    if (!history.length) { el.textContent = el.getAttribute("data-empty") || "—"; return; }
    var chart = window.echarts.init(el);
    var label = el.getAttribute("data-label-score") || "score";
    chart.setOption({
      grid: { left: 40, right: 20, top: 20, bottom: 40 },
      tooltip: {
        trigger: "axis",
        formatter: function (params) {
          var p = params[0], h = history[p.dataIndex];
          var lines = [h.at.slice(0, 16).replace("T", " "), label + ": " + h.score + " (" + h.grade + ")"];
          return lines.concat(h.reasons.map(function (r) {
            return r.replace(/[<>&]/g, function (c) { return { "<": "&lt;", ">": "&gt;", "&": "&amp;" }[c]; });
          })).join("<br>");
        }
      },
      xAxis: { type: "category", data: history.map(function (h) { return h.at.slice(0, 10); }) },
      yAxis: { type: "value", min: 0, max: 100 },
      visualMap: { show: false, pieces: [
        { lt: 60, color: "#d7262b" }, { gte: 60, lt: 75, color: "#f08c00" },
        { gte: 75, lt: 90, color: "#1c7ed6" }, { gte: 90, color: "#2b8a3e" }] },
      series: [{ type: "line", step: "end", name: label, data: history.map(function (h) { return h.score; }) }]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
})();
