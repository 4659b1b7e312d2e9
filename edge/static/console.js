// The attendant console: talks to the station's own API only (no CDN, works offline).
// The server enforces every permission; the console only hides what the role may not do.
"use strict";

// ROLE_PERMISSIONS of edge/api/auth.py (docs/api.md).
const ALL = ["read", "authorize", "stop", "payment", "receipt", "prices", "shift_close", "users", "audit"];
const PERMISSIONS = {
  attendant: ["read", "authorize", "stop"],
  cashier: ["read", "authorize", "stop", "payment", "receipt"],
  manager: ALL,
  finance: ["read", "audit"],
  admin: ALL,
};
const ROLE_NAME = { attendant: "加油员", cashier: "收银员", manager: "站长", finance: "财务", admin: "管理员" };
const STATE = {
  idle: "空闲", calling: "提枪待授权", authorized: "已授权", fuelling: "加油中", completing: "结算中",
  offline: "离线", not_programmed: "未设置油价", stopped: "已停止", reserved: "APP订单预约",
};
const METHODS = [["cash", "现金"], ["wechat", "微信"], ["alipay", "支付宝"], ["card", "银行卡"], ["account", "挂账"]];
// Names of every method a sale can show; "app" (prepaid app orders) is recorded by the station, never taken here.
const METHOD_NAMES = { ...Object.fromEntries(METHODS), app: "APP预付" };
const ALERT = { low_stock: "低库存", high_water: "水位过高", gauge_offline: "液位仪离线" };

let token = null;
let role = null;
let socket = null;
let pumps = {};
let keypad = { nozzle: null, mode: "amount", text: "" };
let receiptSale = null;
let receiptUrl = null;

const $ = (id) => document.getElementById(id);
const may = (perm) => role !== null && (PERMISSIONS[role] || []).includes(perm);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const c of children) node.append(c);
  return node;
}

async function api(method, path, body) {
  const headers = { ...(token ? { Authorization: "Bearer " + token } : {}) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401 && token) { logout(); throw new Error("登录已过期，请重新登录"); }
  if (r.status === 204) return {};
  const data = (r.headers.get("content-type") || "").startsWith("application/json") ? await r.json() : {};
  if (!r.ok) {
    const e = new Error((data.error && data.error.message) || r.statusText);
    e.status = r.status;
    throw e;
  }
  return data;
}

// "2026-11-22T14:08:30.35+08:00" -> "2026-11-22 14:08:30", in the station's own time.
const clock = (t) => (t || "").slice(0, 19).replace("T", " ");

function show(e) { $("err").textContent = e ? (e.message || String(e)) : ""; }

// ------------------------------------------------------------------ forecourt tiles

function render() {
  const list = Object.values(pumps).sort((a, b) => a.number - b.number);
  $("pumps").replaceChildren(...list.map(tile));
}

function tile(p) {
  const pumpState = p.online ? p.state : "offline";
  const box = el("div", { className: "pump s-" + pumpState, id: "pump-" + p.number });
  box.dataset.state = pumpState;
  box.append(el("h3", {}, el("span", { textContent: p.number + "号加油机" }),
    el("span", { className: "muted", textContent: STATE[pumpState] || pumpState })));
  if (p.alarm) box.append(el("div", { className: "alarm", textContent: "报警：" + p.alarm }));
  for (const n of p.nozzles) {
    const row = el("div", { className: "nozzle s-" + n.state, id: "nozzle-" + n.number });
    row.dataset.state = n.state;
    row.append(el("div", { className: "top" },
      el("span", { textContent: n.number + "号枪 · " + n.grade + "#" }),
      el("span", { className: "tag", textContent: STATE[n.state] || n.state })));
    row.append(el("div", { className: "figs" },
      el("span", { className: "volume", textContent: n.volume + " 升" }), "  ",
      el("span", { className: "amount", textContent: "￥" + n.amount })));
    if (may("authorize")) {
      const btn = el("button", { textContent: "授权", id: "authorize-" + n.number, className: "primary" });
      btn.disabled = !p.online || !(n.state === "idle" || n.state === "calling");
      btn.onclick = () => openKeypad(n.number);
      row.append(btn);
    }
    box.append(row);
  }
  if (may("stop")) {
    const stop = el("button", { textContent: "紧急停止", className: "danger", id: "stop-" + p.number });
    stop.disabled = !p.online;
    stop.onclick = () => api("POST", "/api/v1/pumps/" + p.number + "/stop").then(() => show(null), show);
    box.append(stop);
  }
  return box;
}

// ------------------------------------------------------------------ preset keypad

function openKeypad(nozzle) {
  keypad = { nozzle, mode: "amount", text: "" };
  $("keypad-title").textContent = nozzle + "号枪 授权";
  $("keypad-err").textContent = "";
  drawKeypad();
  $("keypad").hidden = false;
}

function drawKeypad() {
  for (const b of document.querySelectorAll(".mode")) b.classList.toggle("on", b.dataset.mode === keypad.mode);
  const unit = keypad.mode === "amount" ? " 元" : keypad.mode === "volume" ? " 升" : "";
  $("keypad-value").textContent = keypad.mode === "full" ? "加满" : (keypad.text || "0") + unit;
  for (const b of document.querySelectorAll("[data-key]")) b.disabled = keypad.mode === "full";
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
    if (!value || Number(value) <= 0) { $("keypad-err").textContent = "请输入预置量"; return; }
    body = { preset: { [keypad.mode]: value } };
  }
  $("keypad-ok").disabled = true;
  try {
    await api("POST", "/api/v1/nozzles/" + keypad.nozzle + "/authorize", body);
    $("keypad").hidden = true;
    show(null);
  } catch (e) {
    $("keypad-err").textContent = e.message;
  } finally {
    $("keypad-ok").disabled = false;
  }
}

// ------------------------------------------------------------------ unpaid sales, payment, receipts

function due(sale) {
  // Cents as integers: money is never a float sum here.
  const cents = (s) => Math.round(Number(s) * 100);
  const paid = sale.payments.reduce((sum, p) => sum + cents(p.amount), 0);
  const left = cents(sale.amount) - paid;
  return (left / 100).toFixed(2);
}

async function loadUnpaid() {
  const data = await api("GET", "/api/v1/sales?unpaid=true&limit=200");
  const rows = data.sales.slice().reverse().map((s) => {
    const tr = el("tr", { id: "sale-" + s.id });
    tr.dataset.sale = s.id;
    const time = (s.ended_at || "").slice(11, 19);
    const owed = due(s);
    tr.append(el("td", { textContent: time }), el("td", { textContent: s.nozzle + "号" }),
      el("td", { textContent: s.grade + "#" }), el("td", { textContent: s.volume }),
      el("td", { textContent: "￥" + s.amount }), el("td", { textContent: "￥" + owed }));
    const actions = el("td", { className: "pay" });
    if (may("payment")) {
      for (const [method, name] of METHODS) {
        const b = el("button", { textContent: name, className: "pay-" + method });
        b.onclick = () => pay(s.id, method, owed);
        actions.append(b);
      }
    }
    const preview = el("button", { textContent: "小票", className: "receipt" });
    preview.onclick = () => openReceipt(s.id);
    actions.append(preview);
    tr.append(actions);
    return tr;
  });
  $("unpaid").querySelector("tbody").replaceChildren(...rows);
  $("unpaid-none").hidden = rows.length > 0;
}

async function pay(saleId, method, amount) {
  try {
    await api("POST", "/api/v1/sales/" + saleId + "/payments", { method, amount });
    show(null);
    await loadUnpaid();
    await openReceipt(saleId);
    if (may("audit")) await loadAudit();
  } catch (e) { show(e); }
}

async function openReceipt(saleId) {
  receiptSale = saleId;
  $("receipt-sale").textContent = saleId;
  $("receipt-msg").textContent = "";
  $("receipt-panel").hidden = false;
  $("receipt-print").hidden = !may("receipt");
  try {
    // The preview needs the bearer token, which an <img src> cannot send: fetch it as a blob.
    const r = await fetch("/api/v1/sales/" + saleId + "/receipt.png", { headers: { Authorization: "Bearer " + token } });
    if (!r.ok) throw new Error((await r.json()).error.message);
    if (receiptUrl) URL.revokeObjectURL(receiptUrl);
    receiptUrl = URL.createObjectURL(await r.blob());
    $("receipt-img").src = receiptUrl;
    $("receipt-img").hidden = false;
  } catch (e) {
    $("receipt-img").hidden = true;
    $("receipt-msg").textContent = "无法预览：" + e.message;
  }
}

async function printReceipt() {
  try {
    const out = await api("POST", "/api/v1/sales/" + receiptSale + "/receipt");
    $("receipt-msg").textContent = "已送打印 · 小票号 " + out.receipt_no + (out.message ? " · " + out.message : "");
    $("receipt-msg").className = "printed";
  } catch (e) {
    $("receipt-msg").textContent = "打印失败：" + e.message;
    $("receipt-msg").className = "err";
  }
}

// ------------------------------------------------------------------ tanks, prices, alarms

async function loadTanks() {
  const data = await api("GET", "/api/v1/tanks");
  $("tanks").replaceChildren(...data.tanks.map((t) => {
    const alerts = t.alerts || [];
    const box = el("div", { className: "tank" + (alerts.length ? " alerting" : ""), id: "tank-" + t.number });
    const pct = t.volume_l !== null && Number(t.capacity) > 0 ? Math.min(100, 100 * Number(t.volume_l) / Number(t.capacity)) : 0;
    const fill = el("div", { className: "fill" });
    fill.style.width = pct.toFixed(1) + "%";
    box.append(el("div", { textContent: t.number + "号罐 · " + t.grade + "#" + (t.gauge_online ? "" : " · 液位仪离线") }),
      el("div", { className: "bar" }, fill),
      el("div", { className: "muted", textContent: t.volume_l === null ? "暂无读数"
        : t.volume_l + " / " + t.capacity + " 升 · 水 " + t.water_mm + " mm" }));
    for (const a of alerts) box.append(el("div", { className: "alert", textContent: "⚠ " + (ALERT[a.kind] || a.kind) }));
    return box;
  }));
  if (!data.tanks.length) $("tanks").replaceChildren(el("p", { className: "muted", textContent: "未配置油罐" }));
}

async function loadPrices() {
  let data;
  try { data = await api("GET", "/api/v1/prices"); }
  catch (e) { $("prices-panel").hidden = true; return; }  // a station without the price endpoint
  $("prices-panel").hidden = false;
  const grades = data.grades || [];
  $("prices").querySelector("tbody").replaceChildren(...grades.map((g) =>
    el("tr", {}, el("td", { textContent: g.grade + "#" }), el("td", { textContent: g.name || "" }),
      el("td", { textContent: "￥" + g.price + " /升" }))));
  $("price-grade").replaceChildren(...grades.map((g) =>
    el("option", { value: g.grade, textContent: g.name || g.grade })));
  const STATE_NAME = { pending: "待生效", applied: "已生效" };
  const plans = data.schedules || [];
  $("schedule").querySelector("tbody").replaceChildren(...(plans.length ? plans.map((s) =>
    el("tr", {}, el("td", { textContent: clock(s.effective_at) }),
      el("td", { textContent: Object.entries(s.prices || {}).map(([g, p]) => g + "# ￥" + p).join("  ") }),
      el("td", { textContent: STATE_NAME[s.state] || s.state || "" }),
      el("td", { textContent: s.source || "" }))) : [el("tr", {}, el("td", { textContent: "没有调价计划" }))]));
}

async function submitPrice(ev) {
  ev.preventDefault();
  const body = { prices: { [$("price-grade").value]: $("price-value").value.trim() } };
  const at = $("price-at").value;
  if (at) body.effective_at = new Date(at).toISOString();
  else body.emergency = true;
  try {
    await api("POST", "/api/v1/prices", body);
    $("price-msg").textContent = at ? "已排入调价计划" : "已立即调价，加油机空闲时生效";
    $("price-value").value = "";
    await loadPrices();
  } catch (e) { $("price-msg").textContent = e.message; }
}

function bars(title, rows) {
  // rows: [label, amount text]; bar widths relative to the largest amount.
  const max = Math.max(0, ...rows.map((r) => Number(r[1]) || 0));
  return el("div", { className: "chart" }, el("h3", { textContent: title }),
    ...rows.map(([label, value]) => {
      const bar = el("span", { className: "bar" });
      bar.style.width = (max ? (60 * (Number(value) || 0) / max) : 0) + "%";  // CSSOM: allowed by the CSP
      return el("div", { className: "bar-row" }, el("span", { className: "bar-label", textContent: label }),
        bar, el("span", { className: "bar-value", textContent: "￥" + value }));
    }));
}

async function loadReport() {
  const day = $("report-date").value;
  const query = day ? "?date=" + encodeURIComponent(day) : "";
  const r = await api("GET", "/api/v1/reports/daily" + query);
  $("report-date").value = r.date || day;
  const csv = "/api/v1/reports/daily.csv" + (r.date ? "?date=" + r.date : "");
  $("report-csv").dataset.href = csv;
  const methodName = METHOD_NAMES;
  const total = r.totals || {};
  $("report").replaceChildren(
    el("p", { textContent: "合计 " + (total.count ?? 0) + " 笔，" + (total.volume ?? "0.00") + " 升，￥" + (total.amount ?? "0.00") }),
    bars("按油品", (r.by_grade || []).map((g) => [g.name || g.grade, g.amount])),
    bars("按小时", (r.by_hour || []).filter((h) => Number(h.amount) > 0).map((h) => [String(h.hour).padStart(2, "0") + "时", h.amount])),
    bars("按支付方式", (r.by_method || []).map((m) => [methodName[m.method] || m.method, m.amount])));
}

async function downloadCsv(ev) {
  ev.preventDefault();
  const href = $("report-csv").dataset.href || "/api/v1/reports/daily.csv";
  const res = await fetch(href, { headers: { Authorization: "Bearer " + token } });
  if (!res.ok) { show(new Error("日报下载失败")); return; }
  const url = URL.createObjectURL(await res.blob());
  const a = el("a", { href: url, download: "daily-report.csv" });
  document.body.append(a);
  a.click();
  a.remove();
  URL.revokeObjectURL(url);
}

function alarm(text, ts) {
  const when = (ts || new Date().toISOString()).slice(11, 19);
  $("alarms").prepend(el("li", { textContent: when + "  " + text }));
  $("alarms-none").hidden = true;
}

// ------------------------------------------------------------------ shift close and audit

async function closeShift() {
  if (!confirm("确认班结？当前班次将关闭并打印班结报表。")) return;
  try {
    const r = await api("POST", "/api/v1/shifts/current/close");
    const box = el("div", { className: "report", id: "shift-report-" + r.shift_id });
    box.append(el("h3", { textContent: "第 " + r.shift_id + " 班 班结报表" }),
      el("p", { textContent: clock(r.opened_at) + " 至 " + clock(r.closed_at) + " · 班结人 " + r.closed_by }),
      el("p", { textContent: "交易 " + r.counts.sales + " 笔 · " + r.totals.volume + " 升 · 金额 ￥" + r.totals.amount
        + " · 已收 ￥" + r.totals.paid + " · 未收 ￥" + r.totals.due }));
    const table = el("table", { className: "list" });
    for (const g of r.grades) table.append(el("tr", {}, el("td", { textContent: g.grade + "#" }),
      el("td", { textContent: g.count + " 笔" }), el("td", { textContent: g.volume + " 升" }), el("td", { textContent: "￥" + g.amount })));
    for (const p of r.payments) table.append(el("tr", {}, el("td", { textContent: METHOD_NAMES[p.method] || p.method }),
      el("td", { textContent: p.count + " 笔" }), el("td", {}), el("td", { textContent: "￥" + p.amount })));
    box.append(table);
    if (r.counts.mismatches) box.append(el("p", { className: "mismatch", textContent: "泵码与销售不符：" + r.counts.mismatches + " 支油枪" }));
    $("shift-report").replaceChildren(box);
    show(null);
    if (may("audit")) await loadAudit();
  } catch (e) { show(e); }
}

async function loadAudit() {
  const data = await api("GET", "/api/v1/audit?limit=1000");
  const rows = data.entries.slice(-50).reverse().map((a) => el("tr", {},
    el("td", { textContent: a.seq }), el("td", { textContent: clock(a.at) }),
    el("td", { textContent: a.actor || "" }), el("td", { textContent: a.action }),
    el("td", { textContent: a.target || "" }), el("td", { textContent: a.outcome })));
  $("audit").querySelector("tbody").replaceChildren(...rows);
}

// ------------------------------------------------------------------ live events

function live() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + "/api/v1/events?token=" + encodeURIComponent(token));
  socket = ws;
  ws.onopen = () => { $("link").hidden = true; };
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "forecourt.snapshot") {
      pumps = {};
      for (const p of msg.data.pumps) pumps[p.number] = p;
      render();
    } else if (msg.type === "pump.state") {
      const before = pumps[msg.data.number];
      pumps[msg.data.number] = msg.data;
      render();
      if (msg.data.alarm && (!before || before.alarm !== msg.data.alarm)) alarm(msg.data.number + "号加油机：" + msg.data.alarm, msg.ts);
    } else if (msg.type === "sale.completed" || msg.type === "payment.recorded") {
      loadUnpaid().catch(show);
    } else if (msg.type.startsWith("tank.")) {
      loadTanks().catch(show);
      if (msg.type === "tank.alert") alarm((msg.data.tank || "") + "号罐：" + (ALERT[msg.data.kind] || msg.data.kind || "报警"), msg.ts);
    } else if (msg.type.startsWith("price.")) {
      loadPrices();
    } else if (msg.type === "pump.alarm" || msg.type === "reconciliation.discrepancy") {
      alarm((msg.type === "pump.alarm" ? "加油机报警 " : "对账差异 ") + JSON.stringify(msg.data), msg.ts);
    }
  };
  ws.onclose = (ev) => {
    if (socket !== ws || token === null) return;
    if (ev.code === 4401) { logout(); return; }
    $("link").hidden = false;
    setTimeout(() => { if (socket === ws && token !== null) live(); }, 2000);
  };
}

// ------------------------------------------------------------------ session

function applyRole() {
  for (const node of document.querySelectorAll("[data-perm]")) node.hidden = !may(node.dataset.perm);
}

async function login(ev) {
  ev.preventDefault();
  try {
    const s = await api("POST", "/api/v1/session", { user: $("user").value, pin: $("pin").value });
    token = s.token;
    role = s.role;
    $("pin").value = "";
    $("loginerr").textContent = "";
    $("login").hidden = true;
    $("main").hidden = false;
    $("logout").hidden = false;
    $("who").textContent = $("user").value + "（" + (ROLE_NAME[role] || role) + "）";
    applyRole();
    live();
    await Promise.all([loadUnpaid(), loadTanks(), loadPrices(), may("audit") ? loadAudit() : null,
      loadReport().catch(() => {})]);
  } catch (e) { $("loginerr").textContent = e.message; }
}

function logout() {
  if (token) fetch("/api/v1/session", { method: "DELETE", headers: { Authorization: "Bearer " + token } }).catch(() => {});
  token = null;
  role = null;
  const ws = socket;
  socket = null;
  if (ws) ws.close();
  pumps = {};
  $("pumps").replaceChildren();
  $("main").hidden = true;
  $("login").hidden = false;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("link").hidden = true;
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", login);
  $("logout").onclick = logout;
  for (const b of document.querySelectorAll("[data-key]")) b.onclick = () => press(b.dataset.key);
  for (const b of document.querySelectorAll(".mode")) b.onclick = () => { keypad.mode = b.dataset.mode; keypad.text = ""; drawKeypad(); };
  $("keypad-ok").onclick = confirmKeypad;
  $("keypad-cancel").onclick = () => { $("keypad").hidden = true; };
  $("receipt-print").onclick = printReceipt;
  $("receipt-close").onclick = () => { $("receipt-panel").hidden = true; };
  $("shift-close").onclick = closeShift;
  $("audit-load").onclick = () => loadAudit().catch(show);
  $("price-form").addEventListener("submit", submitPrice);
  $("report-load").onclick = () => loadReport().catch(show);
  $("report-csv").onclick = (ev) => downloadCsv(ev).catch(show);
});
