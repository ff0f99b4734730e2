// Alerts in the browser: WebSocket with catch-up by last id, sound (Web Audio) and light (banner,
// flashing rows), acknowledge with CSRF, countdowns. Runs for hours: bounded state, reconnects
// with backoff, a watchdog on heartbeats. No inline scripts (CSP): everything is wired here.
// Strings go through Django's JavaScript catalog (/jsi18n/, loaded by base.html). The push payload's
// *_display fields are rendered in the server's default language, so labels are looked up by code.
(function () {
  "use strict";
  var gettext = window.gettext || function (s) { return s; };
  var interpolate = window.interpolate || function (fmt, args) {
    var i = 0;
    return fmt.replace(/%s/g, function () { return String(args[i++]); });
  };
  var banner = document.getElementById("alert-banner");
  if (!banner || !window.WebSocket) { return; }
  var statusbar = document.getElementById("alert-statusbar");
  var connEl = statusbar.querySelector(".ab-conn");
  var soundBtn = statusbar.querySelector(".ab-enable-sound");
  var soundOn = statusbar.querySelector(".ab-sound-on");
  var board = document.getElementById("alert-board");
  var LAST_ID_KEY = "alerts.lastId";
  var MAX_ROWS = 300;

  var unacked = new Map();   // id -> alert payload (unacknowledged, annunciating)
  var silenced = new Set();  // ids the operator silenced (tone stops, light stays)
  var socket = null, backoff = 1000, lastMessageAt = 0, heartbeatSeconds = 25;
  var pollTimer = null, expired = false;

  var LABELS = {
    ack: gettext("确认"),
    overdue: gettext("已超时"),
    left: gettext("剩余"),
    expired: gettext("会话已过期，报警推送已停止，请重新登录。"),
    ackfail: gettext("确认失败："),
    connecting: gettext("连接中…"),
    online: gettext("实时推送已连接"),
    offline: gettext("推送已断开，正在重连…"),
    degraded: gettext("推送服务降级，改为定时刷新"),
    "conn-expired": gettext("会话已过期")
  };
  function label(name) { return LABELS[name] || ""; }
  var LEVEL_NAMES = {
    1: gettext("一级(爆炸前兆)"), 2: gettext("二级(超限)"), 3: gettext("三级(设备异常)"), 4: gettext("四级(提示)")
  };
  var STATE_NAMES = {
    active_unack: gettext("报警未确认"),
    active_ack: gettext("报警已确认"),
    cleared_unack: gettext("已恢复未确认"),
    normal: gettext("已恢复"),
    shelved: gettext("已搁置"),
    suppressed: gettext("设计屏蔽(维护中)"),
    out_of_service: gettext("停用")
  };
  var TIER_NAMES = {
    0: gettext("企业"), 1: gettext("园区"), 2: gettext("县(区)应急管理局"), 3: gettext("市应急管理局")
  };
  // Column names shown by the responsive table on narrow screens (as alerts/_row.html renders them).
  var COLUMNS = {
    level: gettext("级别"), time: gettext("时间"), enterprise: gettext("企业"), message: gettext("报警内容"),
    state: gettext("状态"), tier: gettext("层级"), deadline: gettext("期限"), actions: gettext("操作")
  };
  function levelText(a) { return LEVEL_NAMES[a.level] || a.level_display; }
  function stateText(a) { return STATE_NAMES[a.state] || a.state_display; }
  function tierText(a) { return TIER_NAMES[a.tier] || a.tier_display; }
  // null = this browser has never synchronised (the server then sends no history, only the snapshot).
  function getLastId() {
    var raw = window.localStorage.getItem(LAST_ID_KEY);
    return raw === null ? null : (parseInt(raw, 10) || 0);
  }
  function setLastId(id) {
    var current = getLastId();
    if (current === null || id > current) { window.localStorage.setItem(LAST_ID_KEY, String(id)); }
  }
  function isUnacked(a) { return a.state === "active_unack" || a.state === "cleared_unack"; }
  function csrfToken() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) { return decodeURIComponent(m[1]); }
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  function setConn(state) {
    connEl.setAttribute("data-state", state);
    connEl.textContent = label(state === "expired" ? "conn-expired" : state) || state;
    statusbar.classList.toggle("expired", state === "expired");
  }

  // --- sound: Web Audio tones whose pattern depends on the level --------------------------------
  var audio = null, toneTimer = null, toneLevel = 0;
  var PATTERNS = {
    // [frequency Hz, duration s] ...; a 0 frequency is a pause. The cycle repeats.
    1: [[960, 0.25], [770, 0.25], [960, 0.25], [770, 0.25]],            // two-tone siren, no gap
    2: [[880, 0.15], [0, 0.1], [880, 0.15], [0, 0.1], [880, 0.15], [0, 0.6]],
    3: [[660, 0.2], [0, 0.2], [660, 0.2], [0, 1.5]],
    4: [[523, 0.3], [0, 2.7]]
  };
  function ensureAudio() {
    if (!audio) {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) { return null; }
      audio = new Ctx();
    }
    return audio;
  }
  function refreshSoundControls() {
    var running = audio && audio.state === "running";
    soundBtn.hidden = !!running;
    soundOn.hidden = !running;
  }
  function enableSound() {
    var ctx = ensureAudio();
    if (!ctx) { return; }
    ctx.resume().then(function () { refreshSoundControls(); updateTone(); });
  }
  soundBtn.addEventListener("click", enableSound);
  // Any click on the page is a user gesture that browsers accept for starting audio.
  document.addEventListener("click", function () {
    if (audio && audio.state !== "running") { enableSound(); }
  }, true);
  if (ensureAudio()) {
    if (audio.state === "running") { refreshSoundControls(); } else { soundBtn.hidden = false; }
    audio.onstatechange = refreshSoundControls;
  }

  function playCycle(level) {
    var ctx = audio, t = ctx.currentTime + 0.02, pattern = PATTERNS[level] || PATTERNS[4], total = 0;
    pattern.forEach(function (step) {
      var freq = step[0], dur = step[1];
      if (freq > 0) {
        var osc = ctx.createOscillator(), gain = ctx.createGain();
        osc.type = level === 1 ? "square" : "sine";
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, t);
        gain.gain.exponentialRampToValueAtTime(level === 1 ? 0.25 : 0.35, t + 0.01);
        gain.gain.setValueAtTime(level === 1 ? 0.25 : 0.35, t + dur - 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t + dur);
        osc.connect(gain).connect(ctx.destination);
        osc.start(t); osc.stop(t + dur + 0.01);
      }
      t += dur; total += dur;
    });
    return total;
  }
  function loudestLevel() {
    var level = 0;
    unacked.forEach(function (a, id) {
      if (!silenced.has(id) && (level === 0 || a.level < level)) { level = a.level; }
    });
    return level;
  }
  function updateTone() {
    var level = loudestLevel();
    if (level === toneLevel && toneTimer) { return; }
    if (toneTimer) { window.clearTimeout(toneTimer); toneTimer = null; }
    toneLevel = level;
    // Exposed for the people (and tests) checking what the page is sounding.
    banner.setAttribute("data-tone", level && audio && audio.state === "running" ? String(level) : "0");
    if (!level || !audio || audio.state !== "running") { return; }
    (function loop() {
      var seconds = playCycle(toneLevel);
      toneTimer = window.setTimeout(loop, seconds * 1000);
    })();
  }

  // --- light: the banner ---------------------------------------------------------------------
  function worst() {
    var best = null;
    unacked.forEach(function (a) {
      if (!best || a.level < best.level || (a.level === best.level && a.id > best.id)) { best = a; }
    });
    return best;
  }
  function renderBanner() {
    var a = worst();
    if (!a) { banner.hidden = true; banner.className = "alert-banner"; return; }
    banner.hidden = false;
    banner.className = "alert-banner flash lvl-" + a.level;
    banner.setAttribute("data-alert-id", String(a.id));
    var lvl = banner.querySelector(".ab-level");
    lvl.textContent = levelText(a); lvl.className = "ab-level badge " + a.colour;
    var msg = banner.querySelector(".ab-message");
    msg.textContent = a.message; msg.href = a.url;
    banner.querySelector(".ab-enterprise").textContent = a.enterprise ? a.enterprise.name : "";
    var cd = banner.querySelector(".ab-countdown");
    cd.setAttribute("data-deadline", a.deadline || "");
    var more = unacked.size - 1;
    banner.querySelector(".ab-more").textContent = more > 0 ? interpolate(gettext("另有 %s 条未确认"), [more]) : "";
    tickCountdowns();
  }
  banner.querySelector(".ab-ack").addEventListener("click", function () {
    var id = parseInt(banner.getAttribute("data-alert-id"), 10);
    var shown = unacked.get(id);
    if (id) { acknowledge(id, !!(shown && shown.flood_group)); }
  });
  banner.querySelector(".ab-silence").addEventListener("click", function () {
    unacked.forEach(function (a, id) { silenced.add(id); });
    updateTone();
  });

  // --- countdowns ------------------------------------------------------------------------------
  function fmt(seconds) {
    var s = Math.abs(Math.floor(seconds)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var mm = (m < 10 ? "0" : "") + m, ss = (r < 10 ? "0" : "") + r;
    return (h ? h + ":" + mm : mm) + ":" + ss;
  }
  function tickCountdowns() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var d = el.getAttribute("data-deadline");
      if (!d) { el.textContent = ""; el.classList.remove("overdue"); return; }
      var left = (Date.parse(d) - now) / 1000;
      el.classList.toggle("overdue", left < 0);
      el.textContent = (left < 0 ? label("overdue") + " " : label("left") + " ") + fmt(left);
    });
  }
  window.setInterval(tickCountdowns, 1000);

  // --- acknowledge -----------------------------------------------------------------------------
  function acknowledge(id, wholeGroup) {
    var url = banner.getAttribute("data-api") + id + (wholeGroup ? "/acknowledge-group/" : "/acknowledge/");
    return window.fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), "Accept": "application/json" },
      body: "{}"
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (body) {
        if (resp.ok) {
          apply(body, false);
          if (wholeGroup) { sendHello(); }  // the other members changed too: re-sync
          return;
        }
        if (resp.status === 409 && body.current_status) {
          // Someone else acted first: re-sync from the server.
          sendHello();
          return;
        }
        window.alert(label("ackfail") + (body.detail || resp.status));
      });
    });
  }
  if (board) {
    board.addEventListener("submit", function (ev) {
      var form = ev.target.closest("form.js-ack");
      if (!form) { return; }
      ev.preventDefault();
      var row = form.closest("tr");
      acknowledge(parseInt(form.getAttribute("data-alert-id"), 10), !!(row && row.getAttribute("data-flood-group")));
    });
  }

  // --- the board table -------------------------------------------------------------------------
  function cell(text, name) {
    var td = document.createElement("td");
    td.setAttribute("data-label", name || "");
    if (text !== undefined) { td.textContent = text; }
    return td;
  }
  // Times in the site's time zone (as the server renders them), whatever the browser's zone is.
  var timeFormat = null;
  try {
    timeFormat = new Intl.DateTimeFormat("en-GB", {
      timeZone: banner.getAttribute("data-tz") || undefined, month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
    });
  } catch (e) { timeFormat = null; }
  function timeText(iso) {
    var d = new Date(iso);
    if (timeFormat && timeFormat.formatToParts) {
      var parts = {};
      timeFormat.formatToParts(d).forEach(function (p) { parts[p.type] = p.value; });
      return parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute + ":" + parts.second;
    }
    function p(n) { return (n < 10 ? "0" : "") + n; }
    return p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }
  function buildRow(a) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-alert-id", String(a.id));
    if (a.flood_group) { tr.setAttribute("data-flood-group", String(a.flood_group.id)); }
    var badge = document.createElement("span");
    badge.className = "badge " + a.colour; badge.textContent = levelText(a);
    var c1 = cell(undefined, COLUMNS.level); c1.appendChild(badge); tr.appendChild(c1);
    tr.appendChild(cell(timeText(a.raised_at), COLUMNS.time));
    tr.appendChild(cell(a.enterprise ? a.enterprise.name : "", COLUMNS.enterprise));
    var c4 = cell(undefined, COLUMNS.message), link = document.createElement("a");
    link.href = a.url; link.textContent = a.message; c4.appendChild(link);
    if (a.flood_group) {
      var fg = document.createElement("span"); fg.className = "badge warn flood-count";
      fg.textContent = interpolate(gettext("泛滥分组 %s 条"), [a.flood_group.count]); c4.appendChild(document.createTextNode(" ")); c4.appendChild(fg);
    }
    tr.appendChild(c4);
    var st = cell(stateText(a), COLUMNS.state); st.className = "cell-state"; tr.appendChild(st);
    tr.appendChild(cell(tierText(a), COLUMNS.tier));
    var c7 = cell(undefined, COLUMNS.deadline), cd = document.createElement("span");
    cd.className = "countdown"; cd.setAttribute("data-deadline", a.deadline || ""); c7.appendChild(cd); tr.appendChild(c7);
    var c8 = cell(undefined, COLUMNS.actions); c8.className = "cell-actions";
    if (isUnacked(a)) {
      var form = document.createElement("form");
      form.className = "inline js-ack"; form.setAttribute("data-alert-id", String(a.id));
      var btn = document.createElement("button"); btn.type = "submit"; btn.className = "primary";
      btn.textContent = label("ack"); form.appendChild(btn); c8.appendChild(form);
    }
    tr.appendChild(c8);
    tr.className = "alert-row lvl-" + a.level + (isUnacked(a) ? " flash" : "");
    return tr;
  }
  var ANNUNCIATED = { active_unack: 1, active_ack: 1, cleared_unack: 1 };
  function updateBoard(a, fresh) {
    if (!board) { return; }
    var filter = board.getAttribute("data-filter-level");
    if (filter && String(a.level) !== filter) { return; }
    var tbody = board.tBodies[0];
    var existing = tbody.querySelector('tr[data-alert-id="' + a.id + '"]');
    if (!existing && a.flood_group) {
      existing = tbody.querySelector('tr[data-flood-group="' + a.flood_group.id + '"]');
    }
    if (!ANNUNCIATED[a.state]) {
      if (existing && existing.getAttribute("data-alert-id") === String(a.id)) { existing.remove(); }
    } else {
      var row = buildRow(a);
      if (fresh) { row.classList.add("fresh"); }
      if (existing) { tbody.replaceChild(row, existing); } else { tbody.insertBefore(row, tbody.firstChild); }
    }
    var empty = tbody.querySelector("tr.empty-row");
    if (empty && tbody.rows.length > 1) { empty.remove(); }
    while (tbody.rows.length > MAX_ROWS) { tbody.deleteRow(tbody.rows.length - 1); }
    var count = document.getElementById("board-count");
    if (count) { count.textContent = "(" + tbody.querySelectorAll("tr.alert-row").length + ")"; }
    tickCountdowns();
  }

  // --- state from the server -------------------------------------------------------------------
  function apply(a, fresh) {
    if (!a || !a.id) { return; }
    setLastId(a.id);
    var wasKnown = unacked.has(a.id);
    if (isUnacked(a)) {
      unacked.set(a.id, a);
      if (fresh && !wasKnown) { silenced.delete(a.id); }
    } else {
      unacked.delete(a.id);
      silenced.delete(a.id);
    }
    updateBoard(a, fresh && !wasKnown);
    renderBanner();
    updateTone();
  }
  function onSnapshot(msg) {
    var before = new Set(unacked.keys());
    unacked.clear();
    msg.unacked.forEach(function (a) { unacked.set(a.id, a); });
    silenced.forEach(function (id) { if (!unacked.has(id)) { silenced.delete(id); } });
    msg.missed.forEach(function (a) { updateBoard(a, !before.has(a.id)); });
    msg.unacked.forEach(function (a) { updateBoard(a, false); });
    setLastId(msg.last_id || 0);
    renderBanner();
    updateTone();
  }

  // --- the socket --------------------------------------------------------------------------------
  function sendHello() {
    if (socket && socket.readyState === 1) {
      socket.send(JSON.stringify({ type: "hello", last_id: getLastId() }));
    }
  }
  function setDegraded(degraded) {
    setConn(degraded ? "degraded" : "online");
    if (pollTimer) { window.clearInterval(pollTimer); pollTimer = null; }
    if (degraded) { pollTimer = window.setInterval(sendHello, 15000); }
  }
  function connect() {
    if (expired) { return; }
    setConn("connecting");
    var proto = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(proto + window.location.host + banner.getAttribute("data-ws-path"));
    socket.onopen = function () { backoff = 1000; lastMessageAt = Date.now(); sendHello(); };
    socket.onmessage = function (ev) {
      lastMessageAt = Date.now();
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === "welcome") {
        heartbeatSeconds = msg.heartbeat || heartbeatSeconds;
        setDegraded(!!msg.degraded);
      } else if (msg.type === "degraded") {
        // The server's channel layer (Redis) failed: pushes may not come; poll until "resync".
        setDegraded(true);
      } else if (msg.type === "resync") {
        // The layer is back: whatever was raised meanwhile is fetched by id, pushes flow again.
        setDegraded(false);
        sendHello();
      } else if (msg.type === "error" && msg.retry_after) {
        window.setTimeout(sendHello, msg.retry_after * 1000);  // catch-up failed (database): ask again
      } else if (msg.type === "snapshot") { onSnapshot(msg); }
      else if (msg.type === "alert") { apply(msg.alert, msg.event === "alert.raised"); }
      else if (msg.type === "notification") { bumpBell(); }
      else if (msg.type === "session_expired") { sessionExpired(); }
    };
    socket.onclose = function (ev) {
      socket = null;
      if (pollTimer) { window.clearInterval(pollTimer); pollTimer = null; }
      if (ev.code === 4401 || expired) { sessionExpired(); return; }
      setConn("offline");
      var delay = backoff + Math.floor(Math.random() * 500);
      backoff = Math.min(backoff * 2, 30000);
      window.setTimeout(connect, delay);
    };
  }
  function sessionExpired() {
    expired = true;
    setConn("expired");
    connEl.textContent = label("expired");
    if (toneTimer) { window.clearTimeout(toneTimer); toneTimer = null; }
    if (socket) { try { socket.close(); } catch (e) { /* already closing */ } }
  }
  function bumpBell() {
    var count = document.querySelector(".bell .count");
    if (!count) { return; }
    var n = (parseInt(count.getAttribute("data-unread"), 10) || 0) + 1;
    count.setAttribute("data-unread", String(n)); count.textContent = String(n);
  }
  // Watchdog: a half-open socket (laptop sleep, NAT timeout) shows no error; reconnect it.
  window.setInterval(function () {
    if (socket && socket.readyState === 1 && Date.now() - lastMessageAt > (heartbeatSeconds * 2 + 10) * 1000) {
      socket.close();
    }
  }, 5000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { sendHello(); }
  });
  connect();
})();
