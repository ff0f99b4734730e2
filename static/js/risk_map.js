// Risk map (红橙黄蓝四色图). ECharts comes from js/echarts-global.js (a PyPI package's ESM build, served
// locally); boundaries are GeoJSON from our own endpoint registered with echarts.registerMap, so no
// online tiles are needed. Clustering is done by the server for the visible extent: after every
// pan/zoom this asks points.json for the view's bbox and redraws clusters and points.
(function () {
  "use strict";
  var COLORS = { red: "#d7262b", orange: "#f08c00", yellow: "#e8c400", blue: "#1c7ed6", none: "#adb5bd" };
  var FILTERS = ["grade", "section", "park", "key", "region"];
  var el = document.getElementById("risk-map");
  if (!el) { return; }
  var d = el.dataset;
  var params = new URLSearchParams(window.location.search);
  var chart, labels = {}, codes = {}, drillable = {}, selfName = null;
  var points = [], clusters = [], seq = 0, timer = null;

  function esc(s) {
    return String(s == null ? "" : s).replace(/[<>&"]/g, function (c) {
      return { "<": "&lt;", ">": "&gt;", "&": "&amp;", "\"": "&quot;" }[c];
    });
  }
  function query(extra) {
    var p = new URLSearchParams();
    FILTERS.forEach(function (k) { if (params.get(k)) { p.set(k, params.get(k)); } });
    Object.keys(extra || {}).forEach(function (k) { p.set(k, extra[k]); });
    return p.toString();
  }
  function fail(message) {
    var box = document.getElementById("rm-error");
    box.textContent = message;
    box.hidden = false;
    el.dataset.state = "error";
  }
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) { throw new Error(body.detail || (r.status + " " + r.statusText)); }
        return body;
      });
    });
  }
  function rectangle(b) {
    return { type: "Feature", properties: { name: "", label: "", role: "self" }, geometry: { type: "Polygon",
      coordinates: [[[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]] } };
  }

  function start() {
    chart = window.echarts.init(el);
    window.addEventListener("resize", function () { chart.resize(); schedule(); });
    getJSON(d.boundariesUrl + "?" + query()).then(function (geo) {
      if (geo.features.length) { return geo; }
      // No boundary loaded for this region: frame the enterprises themselves with an invisible box.
      var note = document.getElementById("rm-error");
      note.textContent = d.noBoundaries; note.hidden = false; note.className = "muted";
      return getJSON(d.pointsUrl + "?" + query()).then(function (pts) {
        var b = pts.bbox;
        return { features: [rectangle(b)], bbox: b, empty: true };
      });
    }).then(draw).catch(function (e) { fail(e.message); });
  }

  function draw(geo) {
    geo.features.forEach(function (f) {
      var p = f.properties;
      labels[p.name] = p.label; codes[p.name] = p.code; drillable[p.name] = p.role === "child";
      if (p.role === "self") { selfName = p.name; }
    });
    var hasChildren = geo.features.some(function (f) { return f.properties.role === "child"; });
    window.echarts.registerMap("riskmap", { type: "FeatureCollection", features: geo.features });
    var b = geo.bbox;
    var regions = selfName === null ? [] : [{
      name: selfName, silent: hasChildren,
      itemStyle: hasChildren ? { areaColor: "rgba(0,0,0,0)", borderColor: "#343a40", borderWidth: 2.5 } : {},
      label: { show: !hasChildren }
    }];
    chart.setOption({
      tooltip: { trigger: "item", confine: true, formatter: tooltip },
      geo: {
        map: "riskmap", roam: true, zoom: 1, scaleLimit: { min: 0.5, max: 5000 },
        boundingCoords: [[b[0], b[3]], [b[2], b[1]]],
        itemStyle: { areaColor: geo.empty ? "rgba(0,0,0,0)" : "#f1f3f5", borderColor: geo.empty ? "rgba(0,0,0,0)" : "#868e96", borderWidth: 1 },
        emphasis: { itemStyle: { areaColor: "#e7f0fb" }, label: { show: true } },
        select: { disabled: true },
        label: { show: true, color: "#495057", fontSize: 11, formatter: function (p) { return labels[p.name] || ""; } },
        regions: regions
      },
      series: [
        { id: "points", type: "scatter", coordinateSystem: "geo", symbolSize: 9, zlevel: 1, data: [],
          itemStyle: { borderColor: "#fff", borderWidth: 1 }, emphasis: { scale: 1.6 } },
        { id: "clusters", type: "scatter", coordinateSystem: "geo", zlevel: 2, data: [],
          label: { show: true, color: "#fff", fontWeight: "bold", formatter: function (p) { return p.value[2]; } },
          itemStyle: { borderColor: "#fff", borderWidth: 2, opacity: 0.9 } }
      ]
    });
    chart.on("georoam", schedule);
    chart.on("click", onClick);
    load();
  }

  function viewBbox() {
    var w = chart.getWidth(), h = chart.getHeight();
    var a = chart.convertFromPixel({ geoIndex: 0 }, [0, 0]);
    var c = chart.convertFromPixel({ geoIndex: 0 }, [w, h]);
    var clamp = function (v, lo, hi) { return Math.min(hi, Math.max(lo, v)); };
    return [clamp(Math.min(a[0], c[0]), -180, 180), clamp(Math.min(a[1], c[1]), -90, 90),
      clamp(Math.max(a[0], c[0]), -180, 180), clamp(Math.max(a[1], c[1]), -90, 90)];
  }
  function schedule() { clearTimeout(timer); timer = setTimeout(load, 200); }

  function load() {
    var mine = ++seq;
    el.dataset.state = "loading";
    var bbox = viewBbox().map(function (v) { return v.toFixed(6); }).join(",");
    getJSON(d.pointsUrl + "?" + query({ bbox: bbox })).then(function (res) {
      if (mine !== seq) { return; }  // a newer view was asked for meanwhile
      points = res.points; clusters = res.clusters;
      var max = clusters.reduce(function (m, c) { return Math.max(m, c.count); }, 1);
      chart.setOption({ series: [
        { id: "points", data: points.map(function (p) {
          return { value: [p.lon, p.lat], itemStyle: { color: COLORS[p.grade] }, symbol: p.key ? "diamond" : "circle" };
        }) },
        { id: "clusters", data: clusters.map(function (c) {
          return { value: [c.lon, c.lat, c.count], symbolSize: 20 + 22 * Math.sqrt(c.count / max),
            itemStyle: { color: COLORS[c.grade] } };
        }) }
      ] });
      summary(res);
      el.dataset.points = String(points.length);
      el.dataset.clusters = String(clusters.length);
      el.dataset.total = String(res.total);
      el.dataset.state = "ready";
    }).catch(function (e) { if (mine === seq) { fail(e.message); } });
  }

  function summary(res) {
    var s = document.getElementById("rm-summary");
    s.textContent = s.dataset.template.replace("{total}", res.total) + (res.clustered ? s.dataset.clustered : "");
    document.querySelectorAll("[data-grade-count]").forEach(function (n) {
      n.textContent = res.grades[n.dataset.gradeCount] || 0;
    });
  }

  function tooltip(p) {
    if (p.componentType === "geo") {
      return esc(labels[p.name] || "") + (drillable[p.name] ? "<br><span>" + esc(d.labelDrill) + "</span>" : "");
    }
    if (p.seriesId === "clusters") {
      var c = clusters[p.dataIndex]; if (!c) { return ""; }
      var rows = ["red", "orange", "yellow", "blue", "none"].filter(function (g) { return c.grades[g]; }).map(function (g) {
        return "<span class=\"rm-dot " + g + "\"></span>" + esc(d["label" + g.charAt(0).toUpperCase() + g.slice(1)]) + " " + c.grades[g];
      });
      return esc(d.labelCount) + ": " + c.count + "<br>" + rows.join("<br>") + "<br>" + esc(d.labelZoom);
    }
    var e = points[p.dataIndex]; if (!e) { return ""; }
    return "<strong>" + esc(e.name) + "</strong>" + (e.key ? " · " + esc(d.labelKey) : "") +
      "<br>" + esc(d.labelGrade) + ": <span class=\"rm-dot " + e.grade + "\"></span>" + esc(e.grade_label || d.labelUnrated) +
      "<br>" + esc(d.labelScore) + ": " + (e.score == null ? "—" : e.score) +
      "<br>" + esc(d.labelIndustry) + ": " + esc(e.industry) + "<br><em>" + esc(d.labelOpen) + "</em>";
  }

  function onClick(p) {
    if (p.componentType === "geo") {
      if (drillable[p.name] && codes[p.name]) {
        params.set("region", codes[p.name]);
        window.location.search = params.toString();
      }
      return;
    }
    if (p.seriesId === "points" && points[p.dataIndex]) {
      window.location.href = points[p.dataIndex].url;
    } else if (p.seriesId === "clusters" && clusters[p.dataIndex]) {
      var c = clusters[p.dataIndex], g = chart.getOption().geo[0];
      chart.setOption({ geo: { center: [c.lon, c.lat], zoom: (g.zoom || 1) * 2.5 } });
      load();
    }
  }

  if (typeof window.echarts === "undefined") {
    window.addEventListener("echarts:ready", start, { once: true });
  } else {
    start();
  }
})();
