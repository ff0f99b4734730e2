// Channel page: live value over a WebSocket, trend chart from the 1-minute aggregates (ECharts).
(function () {
  "use strict";
  var live = document.getElementById("live");
  var valueEl = document.getElementById("live-value");
  var timeEl = document.getElementById("live-time");
  var stateEl = document.getElementById("live-state");
  var statusEl = document.getElementById("device-status");
  var STATUS = { online: "在线", offline: "离线", demoted: "降级探测", maintenance: "维护中", disabled: "已停用" };

  function connect(delay) {
    if (!live || !window.WebSocket) return;
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(proto + location.host + live.dataset.ws);
    ws.onopen = function () { stateEl.textContent = "实时"; delay = 1000; };
    ws.onmessage = function (e) {
      var msg = JSON.parse(e.data);
      if (msg.type === "value") {
        var good = msg.quality === "good" && msg.value !== null;
        valueEl.textContent = good ? Number(msg.value).toFixed(2) : msg.quality;
        valueEl.parentNode.classList.toggle("bad", !good);
        timeEl.textContent = new Date(msg.time * 1000).toLocaleString();
      } else if (msg.type === "status") {
        statusEl.textContent = (STATUS[msg.status] || msg.status) + (msg.reason ? "（" + msg.reason + "）" : "");
      }
    };
    ws.onclose = function () {
      stateEl.textContent = "实时通道断开，重连中…";
      setTimeout(function () { connect(Math.min(delay * 2, 30000)); }, delay);
    };
  }
  connect(1000);

  var box = document.getElementById("trend");
  if (!box || !window.echarts) return;
  var chart = window.echarts.init(box);
  window.addEventListener("resize", function () { chart.resize(); });
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
        legend: { data: ["最小", "平均", "最大"] },
        xAxis: { type: "time" },
        yAxis: { type: "value", name: box.dataset.unit, scale: true },
        dataZoom: [{ type: "inside" }, { type: "slider" }],
        series: [
          series("最小", 1, { lineStyle: { opacity: 0.4 } }),
          series("平均", 2, {}),
          series("最大", 3, { lineStyle: { opacity: 0.4 } })
        ]
      });
    })
    .catch(function () { chart.setOption({ title: { text: "趋势数据加载失败", left: "center", top: "middle" } }); });
})();
