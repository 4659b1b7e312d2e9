// The console's core: the session, the live connection, the forecourt strip and the keypad.
// The work pane's tabs are in panes.js; every word a person reads is in messages.js.
//
// Buttons never miss: a live update patches only what changed in the element that is already
// there (keyed by pump number), so a button under a finger is never replaced. Every action
// shows pending, then done or the error, on the button and in the status line. The moment the
// server is unreachable the forecourt is greyed and every control disabled (the two fieldsets),
// and the console reconnects by itself.
"use strict";

const T = window.FC_TEXT;

// ROLE_PERMISSIONS of edge/api/auth.py (docs/api.md): the server checks anyway.
const ALL = ["read", "authorize", "stop", "payment", "receipt", "prices", "shift_close", "users",
  "audit", "service"];
const PERMISSIONS = {
  attendant: ["read", "authorize", "stop"],
  cashier: ["read", "authorize", "stop", "payment", "receipt"],
  manager: ALL,
  finance: ["read", "audit"],
  admin: ALL,
};
const FLOWING = ["calling", "authorized", "fuelling", "completing"];
const RECONNECT_MS = [500, 1000, 2000, 3000, 5000];
const SILENCE_MS = 8000;  // no message for this long: ask whether the server is still there

const FC = window.FC = {
  token: null, role: null, user: null, info: null, connected: false,
  pumps: new Map(), tiles: new Map(), handlers: new Map(),
};

// ------------------------------------------------------------------ small helpers

const $ = FC.$ = (id) => document.getElementById(id);

FC.el = function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "data") Object.assign(node.dataset, value);
    else node[key] = value;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
};
const el = FC.el;

FC.setText = (node, text) => { if (node.textContent !== text) node.textContent = text; };
FC.show = (node, visible) => { if (node.hidden === visible) node.hidden = !visible; };
FC.may = (perm) => FC.role !== null && (PERMISSIONS[FC.role] || []).includes(perm);

FC.say = (code) => T.codes[code] || T.alarms[code] || "操作失败（" + code + "）";
FC.alarmName = (kind) => T.alarms[kind] || "报警";
FC.roleName = (role) => T.roles[role] || role;
FC.methodName = (method) => T.methods[method] || method;
FC.actorName = (actor) => T.actors[actor] || actor || "";
// Times come from the station in its own zone ("2026-12-05T14:05:09+08:00"): shown as written,
// never converted through the browser's zone.
// A time with another offset (a pump's UTC stamp) is turned into the station's first.
FC.local = function local(t) {
  if (!t) return "";
  const offset = FC.info ? FC.info.station.utc_offset_minutes : 480;
  const m = /([+-])(\d\d):(\d\d)$/.exec(t);
  if (m && (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) === offset) return t;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? t : new Date(ms + offset * 60000).toISOString().slice(0, 19);
};
FC.hm = (t) => FC.local(t).slice(11, 16);
FC.md = (t) => t ? FC.local(t).slice(5, 7) + "-" + FC.local(t).slice(8, 10) : "";
FC.when = (t) => t ? FC.md(t) + " " + FC.hm(t) : "";
FC.yuan = (x) => "￥" + x;
FC.saleNo = (sale) => sale.number || ("#" + sale.seq);

FC.on = (type, fn) => {
  if (!FC.handlers.has(type)) FC.handlers.set(type, []);
  FC.handlers.get(type).push(fn);
};
FC.emit = (type, data, message) => {
  for (const fn of FC.handlers.get(type) || []) {
    try { fn(data, message); } catch (e) { console.error(e); }
  }
};

// ------------------------------------------------------------------ the API

class ApiError extends Error {
  constructor(code, status, detail) {
    super(FC.say(code));
    this.code = code;
    this.status = status;
    this.detail = detail;
  }
}
FC.ApiError = ApiError;

FC.api = async function api(method, path, body, { timeout = 10000, raw = false } = {}) {
  const headers = FC.token ? { Authorization: "Bearer " + FC.token } : {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeout);
  let response;
  try {
    response = await fetch(path, { method, headers, signal: abort.signal,
      body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    const code = e.name === "AbortError" ? "timeout" : "network";
    if (code === "network") checkLink();
    throw new ApiError(code, 0, String(e));
  } finally {
    clearTimeout(timer);
  }
  if (response.status === 401 && FC.token && !path.endsWith("/session")) {
    logout("session_expired");
    throw new ApiError("session_expired", 401, "");
  }
  if (raw && response.ok) return response;
  const json = (response.headers.get("content-type") || "").startsWith("application/json");
  const data = json ? await response.json() : {};
  if (!response.ok) {
    const error = data.error || {};
    const failed = new ApiError(error.code || "http_error", response.status, error.message || "");
    failed.retryAfter = Number(response.headers.get("retry-after")) || null;
    throw failed;
  }
  return data;
};

// ------------------------------------------------------------------ feedback

FC.status = function status(text, kind) {
  const line = $("status");
  FC.setText(line, text || "");
  line.className = "status" + (kind ? " " + kind : "");
};

// Runs an action from a button: pending (…), then done (✓) or the error (✗ and the status
// line). `keep`: the button stays enabled meanwhile (a stop is harmless when repeated).
FC.act = async function act(button, run, { keep = false, done = "", failed = null } = {}) {
  button.classList.remove("ok", "bad");
  button.classList.add("busy");
  if (!keep) button.disabled = true;
  try {
    const result = await run();
    button.classList.add("ok");
    if (done) FC.status(typeof done === "function" ? done(result) : done, "ok");
    setTimeout(() => button.classList.remove("ok"), 1500);
    return result;
  } catch (e) {
    button.classList.add("bad");
    const text = e instanceof ApiError ? e.message : FC.say("network");
    FC.status(text, "bad");
    if (failed) failed(e, text);
    setTimeout(() => button.classList.remove("bad"), 4000);
    return undefined;
  } finally {
    button.classList.remove("busy");
    if (!keep) button.disabled = false;
    FC.emit("acted", button);
  }
};

// A modal of the console's own (never the browser's confirm): title, body nodes and actions.
// An action's `run` may throw (its error shows in the dialog) or return false to stay open.
FC.dialog = function dialog(title, body, actions) {
  FC.setText($("dialog-title"), title);
  $("dialog-body").replaceChildren(...body);
  FC.setText($("dialog-err"), "");
  const buttons = actions.map((a) => {
    const b = el("button", { textContent: a.label, className: a.cls || "" });
    if (a.id) b.id = a.id;
    b.onclick = async () => {
      if (!a.run) { FC.closeDialog(); return; }
      FC.setText($("dialog-err"), "");
      const outcome = await FC.act(b, a.run, {
        failed: (e, text) => FC.setText($("dialog-err"), text) });
      if (outcome !== undefined && outcome !== false) FC.closeDialog();
    };
    return b;
  });
  $("dialog-actions").replaceChildren(...buttons);
  $("dialog").hidden = false;
  syncModals();
};
FC.closeDialog = () => { $("dialog").hidden = true; };
FC.cancel = { label: "取消" };

// ------------------------------------------------------------------ the live connection

let socket = null;
let attempts = 0;
let lastMessage = 0;
let reconnectTimer = null;
let probing = false;

function setConnected(on) {
  FC.connected = on;
  document.body.classList.toggle("offline", !on);
  FC.show($("link"), !on && FC.token !== null);
  $("strip-box").disabled = !on;
  $("work-box").disabled = !on;
  $("stop-all").disabled = !on;
  syncModals();
}

// The keypad and the dialog are outside the fieldsets: their buttons follow the link too.
function syncModals() {
  for (const b of document.querySelectorAll(".modal button")) {
    if (!b.classList.contains("busy") && !b.dataset.off) b.disabled = !FC.connected;
  }
  if (FC.connected && !$("keypad").hidden) drawKeypad();
}

function connect() {
  clearTimeout(reconnectTimer);
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + "/api/v1/events?token="
    + encodeURIComponent(FC.token));
  socket = ws;
  ws.onopen = () => {
    if (socket !== ws) return;
    attempts = 0;
    lastMessage = Date.now();
  };
  ws.onmessage = (m) => {
    if (socket !== ws) return;
    lastMessage = Date.now();
    FC.received = (FC.received || 0) + 1;  // live messages so far (the browser tests read it)
    const message = JSON.parse(m.data);
    if (message.type === "forecourt.snapshot") {
      snapshot(message.data);
      const wasDown = !FC.connected;
      setConnected(true);
      if (wasDown) FC.emit("reconnected");
    } else if (message.type === "pump.state") {
      patchPump(message.data);
    }
    FC.emit(message.type, message.data, message);
  };
  ws.onclose = (ev) => {
    if (socket !== ws) return;
    socket = null;
    if (FC.token === null) return;
    if (ev.code === 4401) { logout("session_expired"); return; }
    setConnected(false);
    const wait = RECONNECT_MS[Math.min(attempts, RECONNECT_MS.length - 1)];
    attempts += 1;
    reconnectTimer = setTimeout(() => { if (FC.token !== null && socket === null) connect(); }, wait);
  };
}

// A connection that went quiet may be dead without a close (a cable pulled): ask the server.
async function checkLink() {
  if (probing || socket === null) return;
  probing = true;
  try {
    await FC.api("GET", "/api/v1/health", undefined, { timeout: 3000 });
  } catch (e) {
    if (socket !== null) socket.close();
  } finally {
    probing = false;
  }
}

setInterval(() => {
  if (FC.token !== null && FC.connected && Date.now() - lastMessage > SILENCE_MS) checkLink();
}, 3000);

// ------------------------------------------------------------------ the forecourt strip

function snapshot(data) {
  const seen = new Set();
  for (const p of data.pumps) { patchPump(p); seen.add(p.number); }
  for (const [number, tile] of FC.tiles) {
    if (!seen.has(number)) { tile.root.remove(); FC.tiles.delete(number); FC.pumps.delete(number); }
  }
}

function createTile(number) {
  const t = {
    root: el("div", { className: "tile", id: "pump-" + number }),
    no: el("span", { className: "t-no", textContent: number + "号" }),
    state: el("span", { className: "t-state" }),
    noz: el("div", { className: "t-noz" }),
    vol: el("div", { className: "t-vol" }),
    amt: el("div", { className: "t-amt" }),
    auth: el("button", { className: "b-auth primary", id: "auth-" + number, textContent: "授权" }),
    reset: el("button", { className: "b-reset", id: "reset-" + number, textContent: "复位" }),
    stop: el("button", { className: "b-stop", id: "stop-" + number, textContent: "急停" }),
  };
  t.root.dataset.pump = number;
  t.root.append(el("div", { className: "t-head" }, t.no, t.state), t.noz, t.vol, t.amt,
    el("div", { className: "t-btns" }, t.auth, t.reset, t.stop));
  t.auth.onclick = () => openKeypad(number);
  t.reset.onclick = () => FC.act(t.reset, () => FC.api("POST", "/api/v1/pumps/" + number + "/reset"),
    { done: number + "号加油机已复位" });
  // An emergency stop acts as the finger touches (pointerdown), not when it is lifted; the
  // keyboard (Enter, Space) still works through click, whose detail is then 0.
  const stop = () => FC.act(t.stop, () => FC.api("POST", "/api/v1/pumps/" + number + "/stop"),
    { keep: true, done: number + "号加油机已急停" });
  t.stop.addEventListener("pointerdown", (ev) => { if (ev.button === 0) stop(); });
  t.stop.addEventListener("click", (ev) => { if (ev.detail === 0) stop(); });
  // Tiles stay in pump order; a pump seen for the first time goes to its place.
  const after = [...FC.tiles.keys()].filter((n) => n > number).sort((a, b) => a - b)[0];
  if (after === undefined) $("strip").append(t.root);
  else $("strip").insertBefore(t.root, FC.tiles.get(after).root);
  FC.tiles.set(number, t);
  return t;
}

function activeNozzle(p) {
  return p.nozzles.find((n) => FLOWING.includes(n.state))
    || p.nozzles.find((n) => Number(n.volume) > 0) || null;
}

function pumpLabel(p) {
  if (!p.online) return T.states.offline;
  if (p.stopped_by_station) return "已急停";
  if (p.out_of_service) return T.states.out_of_service;
  if (p.blocked && p.blocked.length && p.state === "idle") return T.states.blocked;
  if (p.state === "idle" && p.nozzles.length && p.nozzles.every((n) => n.state === "reserved")) {
    return T.states.reserved;
  }
  return T.states[p.state] || p.state;
}

function patchPump(p) {
  FC.pumps.set(p.number, p);
  const t = FC.tiles.get(p.number) || createTile(p.number);
  const state = p.online ? p.state : "offline";
  if (t.root.dataset.state !== state) t.root.dataset.state = state;
  t.root.classList.toggle("latched", !!p.stopped_by_station);
  t.root.classList.toggle("out", !!p.out_of_service);
  FC.setText(t.state, pumpLabel(p));
  const active = activeNozzle(p);
  const alarms = p.alarms || [];
  let nozzleText;
  if (alarms.length) nozzleText = "⚠ " + FC.alarmName(alarms[alarms.length - 1].kind);
  else if (active) nozzleText = active.number + "号枪 " + active.grade + "#";
  else nozzleText = p.nozzles.map((n) => n.grade + "#").join(" ");
  FC.setText(t.noz, nozzleText);
  t.noz.classList.toggle("alarm", alarms.length > 0);
  FC.setText(t.vol, (active ? active.volume : "0.00") + " 升");
  FC.setText(t.amt, FC.yuan(active ? active.amount : "0.00"));
  const latched = !!p.stopped_by_station;
  const free = p.nozzles.some((n) => n.state !== "reserved");
  const canAuthorize = p.online && (state === "idle" || state === "calling") && !latched
    && !p.out_of_service && !(p.blocked && p.blocked.length) && free;
  FC.show(t.auth, FC.may("authorize") && !latched);
  FC.show(t.reset, FC.may("stop") && latched);
  FC.show(t.stop, FC.may("stop"));
  setEnabled(t.auth, canAuthorize);
  setEnabled(t.stop, p.online);
  if (keypad.pump === p.number && !$("keypad").hidden) drawKeypad();
}

function setEnabled(button, on) {
  const disabled = !on || (button.classList.contains("busy") && !button.classList.contains("b-stop"));
  if (button.disabled !== disabled) button.disabled = disabled;
}

// ------------------------------------------------------------------ the preset keypad

const keypad = { pump: null, nozzle: null, mode: "amount", text: "" };
FC.keypad = keypad;

function openKeypad(pump) {
  const p = FC.pumps.get(pump);
  if (!p) return;
  const lifted = p.nozzles.find((n) => n.state === "calling");
  const first = p.nozzles.find((n) => n.state !== "reserved") || p.nozzles[0];
  Object.assign(keypad, { pump, nozzle: (lifted || first).number, mode: "amount", text: "" });
  FC.setText($("keypad-title"), pump + "号加油机 授权");
  FC.setText($("keypad-err"), "");
  $("keypad-nozzles").replaceChildren(...p.nozzles.map((n) => {
    const b = el("button", { textContent: n.number + "号枪 " + n.grade + "#", id: "kn-" + n.number });
    b.dataset.nozzle = n.number;
    b.onclick = () => { keypad.nozzle = n.number; drawKeypad(); };
    return b;
  }));
  $("keypad").hidden = false;
  syncModals();
  drawKeypad();
}
FC.openKeypad = openKeypad;

function drawKeypad() {
  for (const b of document.querySelectorAll("#keypad .mode")) {
    b.classList.toggle("on", b.dataset.mode === keypad.mode);
  }
  for (const b of document.querySelectorAll("#keypad-nozzles button")) {
    b.classList.toggle("on", Number(b.dataset.nozzle) === keypad.nozzle);
  }
  const unit = keypad.mode === "amount" ? " 元" : keypad.mode === "volume" ? " 升" : "";
  FC.setText($("keypad-value"), keypad.mode === "full" ? "加满" : (keypad.text || "0") + unit);
  for (const b of document.querySelectorAll("#keypad [data-key]")) {
    b.disabled = !FC.connected || keypad.mode === "full";
  }
}

function press(key) {
  let t = keypad.text;
  if (key === "back") t = t.slice(0, -1);
  else if (key === ".") { if (!t.includes(".")) t = (t || "0") + "."; }
  else {
    const places = keypad.mode === "amount" ? 2 : 3;
    const dot = t.indexOf(".");
    if (dot >= 0 && t.length - dot > places) return;
    if (dot < 0 && t.replace(/^0+/, "").length >= 6) return;
    t = t === "0" ? key : t + key;
  }
  keypad.text = t;
  drawKeypad();
}

async function confirmKeypad() {
  let body = {};
  if (keypad.mode !== "full") {
    const value = keypad.text.replace(/\.$/, "");
    if (!value || Number(value) <= 0) { FC.setText($("keypad-err"), "请输入预置量"); return; }
    body = { preset: { [keypad.mode]: value } };
  }
  const nozzle = keypad.nozzle;
  const ok = await FC.act($("keypad-ok"),
    () => FC.api("POST", "/api/v1/nozzles/" + nozzle + "/authorize", body),
    { done: nozzle + "号枪已授权", failed: (e, text) => FC.setText($("keypad-err"), text) });
  if (ok !== undefined) $("keypad").hidden = true;
}

function keyboard(ev) {
  if ($("keypad").hidden) return;
  if (/^[0-9.]$/.test(ev.key)) press(ev.key);
  else if (ev.key === "Backspace") press("back");
  else if (ev.key === "Enter") confirmKeypad();
  else if (ev.key === "Escape") $("keypad").hidden = true;
  else return;
  ev.preventDefault();
}

// ------------------------------------------------------------------ header: clock, printer

let clockSkew = 0;

function tickClock() {
  if (!FC.info) return;
  const offset = FC.info.station.utc_offset_minutes;
  const at = new Date(Date.now() + clockSkew + offset * 60000);
  const text = String(at.getUTCHours()).padStart(2, "0") + ":" + String(at.getUTCMinutes()).padStart(2, "0");
  FC.setText($("clock-time"), text);
}
setInterval(tickClock, 1000);

const PRINTER = { ready: "打印机正常", paper_low: "小票纸快用完", paper_out: "小票机缺纸",
  offline: "小票机离线", failed: "小票机故障" };

FC.showPrinter = function showPrinter(status) {
  const chip = $("printer-chip");
  if (!status) { FC.show(chip, false); return; }
  FC.printer = status;
  let text = PRINTER[status.condition] || "小票机故障";
  if (status.pending_jobs > 0) text += "（" + status.pending_jobs + "张待打）";
  FC.setText(chip, text);
  chip.className = "chip" + (status.condition === "ready" ? "" : status.condition === "paper_low" ? " warn" : " bad");
  FC.show(chip, true);
};

async function refreshPrinter() {
  try {
    const health = await FC.api("GET", "/api/v1/health");
    FC.showPrinter(health.printer);
  } catch (e) { /* the link status says it */ }
}

function printerDialog() {
  const s = FC.printer || {};
  const body = [el("p", { textContent: $("printer-chip").textContent }),
    el("p", { className: "muted", textContent: "待打印 " + (s.pending_jobs || 0) + " 张，已打印 " + (s.printed_jobs || 0) + " 张" })];
  const actions = [{ label: "关闭" }];
  if (FC.may("receipt")) {
    actions.unshift({ label: "重试打印", cls: "primary", id: "printer-retry", run: async () => {
      const status = await FC.api("POST", "/api/v1/printer/retry");
      FC.showPrinter(status);
      FC.status("已通知打印机重试", "ok");
      return true;
    } });
  }
  FC.dialog("小票打印机", body, actions);
}

// ------------------------------------------------------------------ session

async function login(ev) {
  ev.preventDefault();
  const name = $("user").value.trim();
  const pin = $("pin").value;
  if (!name || !pin) { FC.setText($("loginerr"), "请输入用户名和密码"); return; }
  $("go").disabled = true;
  try {
    const s = await FC.api("POST", "/api/v1/session", { user: name, pin });
    FC.token = s.token;
    FC.role = s.role;
    FC.user = name;
    FC.info = await FC.api("GET", "/api/v1/console");
    clockSkew = Date.parse(FC.info.now) - Date.now();
    $("pin").value = "";
    FC.setText($("loginerr"), "");
    FC.setText($("station-name"), FC.info.station.name);
    FC.setText($("clock-zone"), FC.info.station.zone_label);
    tickClock();
    FC.setText($("who"), name + "（" + FC.roleName(FC.role) + "）");
    for (const id of ["login"]) $(id).hidden = true;
    for (const id of ["app", "logout", "clock"]) $(id).hidden = false;
    FC.show($("stop-all"), FC.may("stop"));
    FC.showPrinter(FC.info.printer);
    setConnected(false);
    FC.show($("link"), false);
    connect();
    FC.emit("login");
  } catch (e) {
    let text = e instanceof ApiError ? e.message : FC.say("network");
    if (e instanceof ApiError && e.code === "login_throttled" && e.retryAfter) {
      text = "密码错误次数太多，请 " + e.retryAfter + " 秒后再试，或请站长解锁";
    }
    FC.setText($("loginerr"), text);
    if (FC.token && !FC.info) { FC.token = null; FC.role = null; }
  } finally {
    $("go").disabled = false;
  }
}

function logout(reason) {
  if (FC.token) {
    fetch("/api/v1/session", { method: "DELETE", headers: { Authorization: "Bearer " + FC.token } })
      .catch(() => {});
  }
  FC.token = null;
  FC.role = null;
  FC.info = null;
  const ws = socket;
  socket = null;
  if (ws) ws.close();
  clearTimeout(reconnectTimer);
  FC.pumps.clear();
  FC.tiles.clear();
  $("strip").replaceChildren();
  for (const id of ["app", "logout", "stop-all", "clock", "printer-chip", "link", "keypad", "dialog"]) {
    $(id).hidden = true;
  }
  $("login").hidden = false;
  FC.setText($("who"), "");
  FC.setText($("station-name"), "");
  FC.setText($("loginerr"), typeof reason === "string" ? FC.say(reason) : "");
  FC.emit("logout");
}
FC.logout = logout;

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", login);
  $("logout").onclick = () => logout();
  for (const b of document.querySelectorAll("#keypad [data-key]")) b.onclick = () => press(b.dataset.key);
  for (const b of document.querySelectorAll("#keypad .mode")) {
    b.onclick = () => { keypad.mode = b.dataset.mode; keypad.text = ""; drawKeypad(); };
  }
  $("keypad-ok").onclick = confirmKeypad;
  $("keypad-cancel").onclick = () => { $("keypad").hidden = true; };
  document.addEventListener("keydown", keyboard);
  $("printer-chip").onclick = printerDialog;
  // The station-wide stop: no question in front of it; repeating it is harmless.
  const stopAll = () => FC.act($("stop-all"), () => FC.api("POST", "/api/v1/forecourt/stop"),
    { keep: true, done: "全站加油机已急停，逐台复位后才能再加油" });
  $("stop-all").addEventListener("pointerdown", (ev) => { if (ev.button === 0) stopAll(); });
  $("stop-all").addEventListener("click", (ev) => { if (ev.detail === 0) stopAll(); });
  FC.on("printer.alarm", () => refreshPrinter());
  FC.on("reconnected", () => refreshPrinter());
});
