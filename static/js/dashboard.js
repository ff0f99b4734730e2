// Regulator dashboard charts (enterprises/templates/enterprises/dashboard.html). ECharts comes from
// js/echarts-global.js (a PyPI package's ESM build served locally); the data from a json_script element.
(function () {
  "use strict";
  var COLOURS = { red: "#d7262b", orange: "#f08c00", yellow: "#f2c200", blue: "#1c7ed6", none: "#adb5bd" };
  var LEVEL_COLOURS = ["#d7262b", "#f08c00", "#f2c200", "#1c7ed6"];

  // The period picker: show only the inputs of the chosen kind (all are shown without script).
  var form = document.getElementById("db-form");
  if (form) {
    var kind = form.querySelector(".db-period");
    var sync = function () {
      form.querySelectorAll("[data-for-period]").forEach(function (el) {
        var on = el.getAttribute("data-for-period") === kind.value;
        el.hidden = !on;
        el.querySelectorAll("input").forEach(function (input) { input.disabled = !on; });
      });
    };
    kind.addEventListener("change", sync);
    sync();
  }

  var dataEl = document.getElementById("db-data");
  if (!dataEl) { return; }
  var data = JSON.parse(dataEl.textContent);
  var t = document.getElementById("db-i18n").dataset;

  function draw() {
    var charts = [];
    function chart(name, option) {
      var el = document.querySelector('[data-chart="' + name + '"]');
      if (!el) { return null; }
      var c = window.echarts.init(el);
      c.setOption(option);
      charts.push(c);
      return c;
    }
    function series(key) {
      return (data.trend[key] || []).map(function (p) { return p.value; });
    }
    var months = (data.trend.hazards_found || []).map(function (p) { return p.period; });
    var trendChart = chart("trend", {
      grid: { left: 50, right: 20, top: 30, bottom: 30 }, tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: months }, yAxis: { type: "value" },
      series: [{ type: "line", name: data.labels.hazards_found, data: series("hazards_found"), connectNulls: false }]
    });
    var select = document.querySelector(".db-trend-key");
    if (select && trendChart) {
      select.addEventListener("change", function () {
        trendChart.setOption({ series: [{ name: data.labels[select.value], data: series(select.value) }] });
      });
    }
    chart("hazards", {
      grid: { left: 50, right: 20, top: 30, bottom: 30 }, tooltip: { trigger: "axis" }, legend: { top: 0 },
      xAxis: { type: "category", data: months }, yAxis: { type: "value" },
      series: [
        { type: "bar", name: t.found, data: series("hazards_found"), itemStyle: { color: "#f08c00" } },
        { type: "bar", name: t.closed, data: series("hazards_closed"), itemStyle: { color: "#2b8a3e" } }
      ]
    });
    function pie(name, dist, labels, colours) {
      var items = Object.keys(dist || {}).filter(function (k) { return dist[k] > 0; }).map(function (k) {
        return { name: labels[k] || k, value: dist[k], itemStyle: { color: colours[k] || "#868e96" } };
      });
      if (!items.length) {
        var el = document.querySelector('[data-chart="' + name + '"]');
        if (el) { el.textContent = t.empty; }
        return;
      }
      chart(name, { tooltip: { trigger: "item" }, legend: { bottom: 0 },
        series: [{ type: "pie", radius: ["30%", "55%"], center: ["50%", "45%"], data: items,
          label: { formatter: "{b}\n{c} ({d}%)" } }] });
    }
    pie("risk", data.distributions.risk_grade,
      { red: t.red, orange: t.orange, yellow: t.yellow, blue: t.blue, none: t.none }, COLOURS);
    pie("credit", data.distributions.credit_grade, { none: t.none },
      { A: "#2b8a3e", B: "#1c7ed6", C: "#f08c00", D: "#d7262b", none: "#adb5bd" });
    var levels = data.distributions.alerts_by_level || {};
    chart("alerts", {
      grid: { left: 50, right: 20, top: 20, bottom: 30 }, tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: [t.l1, t.l2, t.l3, t.l4] }, yAxis: { type: "value", minInterval: 1 },
      series: [{ type: "bar", data: ["1", "2", "3", "4"].map(function (k, i) {
        return { value: levels[k] || 0, itemStyle: { color: LEVEL_COLOURS[i] } };
      }) }]
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  }
  if (typeof window.echarts === "undefined") {
    window.addEventListener("echarts:ready", draw, { once: true });
  } else {
    draw();
  }
})();
