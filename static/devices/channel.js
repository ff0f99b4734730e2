// Channel page: live value over a WebSocket, trend chart from the 1-minute aggregates (ECharts),
// and the status of coil writes followed until the poller confirms or fails them.
// Strings go through Django's JavaScript catalog (/jsi18n/, loaded by base.html).
(function () {
  "use strict";
  var gettext = window.gettext || function (s) { return s; };
  var interpolate = window.interpolate || function (fmt, obj) {
    return fmt.replace(/%\((\w+)\)s/g, function (m, k) { return String(obj[k]); });
  };
  var live = document.getElementById("live");
  var valueEl = document.getElementById("live-value");
  var timeEl = document.getElementById("live-time");
  var stateEl = document.getElementById("live-state");
  var statusEl = document.getElementById("device-status");
  var STATUS = {
    unknown: gettext("未知"),
    online: gettext("在线"),
    offline: gettext("离线"),
    demoted: gettext("降级探测"),
    maintenance: gettext("维护中"),
    disabled: gettext("已停用")
  };

  function connect(delay) {
    if (!live || !window.WebSocket) return;
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(proto + location.host + live.dataset.ws);
    ws.onopen = function () { stateEl.textContent = gettext("实时"); delay = 1000; };
    ws.onmessage = function (e) {
      var msg = JSON.parse(e.data);
      if (msg.type === "value") {
        var good = msg.quality === "good" && msg.value !== null;
        // Out of range keeps its value: a gas detector past its top is the leak, shown as such.
        var over = msg.quality === "out_of_range" && msg.value !== null;
        valueEl.textContent = good ? Number(msg.value).toFixed(2)
          : over ? gettext("超量程") + " " + Number(msg.value).toFixed(2) : msg.quality;
        valueEl.parentNode.classList.toggle("bad", !good);
        timeEl.textContent = new Date(msg.time * 1000).toLocaleString();
      } else if (msg.type === "status") {
        var label = STATUS[msg.status] || msg.status;
        statusEl.textContent = msg.reason
          ? interpolate(gettext("%(status)s（%(reason)s）"), { status: label, reason: msg.reason }, true)
          : label;
      }
    };
    ws.onclose = function (e) {
      if (e.code === 4401 || e.code === 4403) {  // logged out, idle or expired session, foreign origin
        stateEl.textContent = gettext("登录已失效，请刷新页面重新登录");
        return;
      }
      stateEl.textContent = gettext("实时通道断开，重连中…");
      setTimeout(function () { connect(Math.min(delay * 2, 30000)); }, delay);
    };
  }
  connect(1000);

  // --- coil writes: poll the device's command list while one of ours is still open -------------
  var COIL_STATUS = {
    pending: [gettext("待执行"), "warn"],
    running: [gettext("执行中"), "blue"],
    done: [gettext("已确认"), "ok"],
    failed: [gettext("失败"), "red"]
  };
  var writes = document.getElementById("coil-writes");
  function openRows() {
    return writes ? Array.prototype.slice.call(writes.querySelectorAll("tr[data-command]")).filter(function (tr) {
      var badge = tr.querySelector(".coil-status");
      var st = badge && badge.getAttribute("data-status");
      return st === "pending" || st === "running";
    }) : [];
  }
  function showStatus(tr, cmd) {
    var cellEl = tr.querySelector(".cell-status");
    var info = COIL_STATUS[cmd.status] || [cmd.status, ""];
    cellEl.textContent = "";
    var badge = document.createElement("span");
    badge.className = "badge coil-status " + info[1];
    badge.setAttribute("data-status", cmd.status);
    badge.textContent = info[0];
    cellEl.appendChild(badge);
    if (cmd.status === "done" && cmd.readback !== null && cmd.readback !== undefined) {
      var rb = document.createElement("span");
      rb.className = "muted";
      rb.textContent = " " + gettext("回读") + " " + (cmd.readback ? "1" : "0");
      cellEl.appendChild(rb);
    }
    if (cmd.error) {
      var err = document.createElement("span");
      err.className = "error";
      err.textContent = " " + cmd.error;
      cellEl.appendChild(err);
    }
  }
  var polls = 0;
  function pollWrites() {
    if (!openRows().length || polls++ > 150) return;  // at most ~5 minutes of polling
    fetch(writes.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (list) {
        var byId = {};
        (list.results || list).forEach(function (cmd) { byId[cmd.id] = cmd; });
        openRows().forEach(function (tr) {
          var cmd = byId[tr.getAttribute("data-command")];
          if (cmd) showStatus(tr, cmd);
        });
      })
      .catch(function () { /* keep the server-rendered status; try again */ })
      .then(function () { setTimeout(pollWrites, 2000); });
  }
  if (writes) setTimeout(pollWrites, 1000);

  // --- trend ----------------------------------------------------------------------------------
  var box = document.getElementById("trend");
  if (!box || !window.echarts) return;
  var chart = window.echarts.init(box);
  window.addEventListener("resize", function () { chart.resize(); });
  var MIN = gettext("最小"), AVG = gettext("平均"), MAX = gettext("最大");
  fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (r) { return r.json(); })
    .then(function (data) {
      var pts = data.points || [];
      if (!pts.length) {
        chart.setOption({ title: { text: box.dataset.empty, left: "center", top: "middle", textStyle: { color: "#888", fontSize: 14 } } });
        return;
      }
      function series(name, idx, extra) {
        var s = { name: name, type: "line", showSymbol: false, data: pts.map(function (p) { return [p[0], p[idx]]; }) };
        for (var k in extra) s[k] = extra[k];
        return s;
      }
      chart.setOption({
        tooltip: { trigger: "axis" },
        legend: { data: [MIN, AVG, MAX] },
        xAxis: { type: "time" },
        yAxis: { type: "value", name: box.dataset.unit, scale: true },
        dataZoom: [{ type: "inside" }, { type: "slider" }],
        series: [
          series(MIN, 1, { lineStyle: { opacity: 0.4 } }),
          series(AVG, 2, {}),
          series(MAX, 3, { lineStyle: { opacity: 0.4 } })
        ]
      });
    })
    .catch(function () { chart.setOption({ title: { text: gettext("趋势数据加载失败"), left: "center", top: "middle" } }); });
})();
