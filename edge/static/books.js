// The station's books for the manager (docs/books.md): delivery receipts (卸油验收), non-sale
// fuel (自检、自用、回罐、倒罐), totalizer corrections, the month close (月结、进销存) and credit
// accounts (挂账). A module of its own on top of console.js (window.FC): it adds one tab, its
// pane, and its refusal codes to the console's message table, and talks to the API only.
"use strict";

(() => {
  const FC = window.FC;
  const T = window.FC_TEXT;
  if (!FC || !T) return;
  const { $, el } = FC;

  // Chinese for the books' refusal codes (the API keeps English codes). An account's refusal
  // carries its own Chinese message, which is shown as it is.
  Object.assign(T.codes, {
    nozzle_paused: "该油枪所在油罐正在卸油，验收完成前暂停加油",
    account_unknown: "该卡或车牌未登记挂账",
    account_blocked: "该挂账单位已停用",
    account_grade: "该挂账单位不能加此油品",
    account_daily_fills: "该挂账单位今日加油次数已达上限",
    account_daily_amount: "该挂账单位今日挂账金额已达上限",
    account_daily_volume: "该挂账单位今日挂账油量已达上限",
    account_refused: "不能挂账加油",
    account_unavailable: "本站未启用挂账",
    books_unavailable: "账务功能正在启动，请稍候再试",
    unknown_receipt: "没有这张卸油验收单，请刷新",
    receipt_open: "该油罐已有未完成的卸油验收",
    receipt_closed: "该验收单已完成或已取消",
    delivery_received: "这次进油已有验收单",
    unknown_delivery: "该油罐没有这次进油记录",
    unknown_tank: "没有这个油罐",
    reading_required: "液位仪没有读数，请人工录入油量并说明原因",
    temperature_required: "缺少油温，无法计算标准体积，请录入油温",
    no_rise: "卸油后油量没有增加，请核对读数",
    outcome_required: "损耗超出允许范围，请选择处理结果",
    outcome_not_needed: "损耗在允许范围内，无需选择处理结果",
    invalid_cause: "请选择校正原因",
    invalid_month: "月份格式不对",
    month_not_over: "该月尚未结束，不能月结",
    month_order: "请按月份顺序月结",
    month_closed: "该月已月结，不能更改；更正请记入本月调整",
    no_tanks: "本站没有配置油罐，无法月结",
    unknown_account: "没有这个挂账单位",
    identifier_taken: "该卡或车牌已属于其他挂账单位",
    invalid_identifier: "卡号或车牌不能为空",
  });
  const KINDS = { self_check: "计量自检（回罐）", own_use: "自用", returned: "回罐", transfer: "倒罐" };
  const CAUSES = { board_swap: "更换主板", reset: "泵码清零", other: "其他" };
  const OUTCOMES = { accepted: "合格验收", driver_pays: "超耗由司机赔付",
                     depot_remeasure: "超耗待油库复核", manager_accepts: "超耗经理签认" };

  // ---------------------------------------------------------------- small parts

  const input = (id, props = {}) => el("input", { id, autocomplete: "off", ...props });
  const label = (text, node) => el("label", {}, text + " ", node);
  const row = (...nodes) => el("div", { className: "row" }, ...nodes);
  const value = (id) => { const node = $(id); return node ? node.value.trim() : ""; };
  const opt = (id) => value(id) || undefined;
  const select = (id, choices) => el("select", { id }, ...Object.entries(choices).map(
    ([key, text]) => el("option", { value: key, textContent: text })));
  function button(id, text, run, cls = "") {
    const b = el("button", { id, textContent: text, className: cls });
    // A run may say what it did (`{ say }`); else the status line says 已完成.
    b.onclick = () => FC.act(b, run, { done: (result) => (result && result.say) || "已完成" });
    return b;
  }
  function grid(headers, rows) {
    return el("table", { className: "grid" },
      el("tr", {}, ...headers.map((h) => el("th", { textContent: h }))),
      ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", { textContent: c ?? "-" })))));
  }
  async function download(path, name) {
    const response = await FC.api("GET", path, undefined, { raw: true });
    const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name });
    link.click();
    URL.revokeObjectURL(link.href);
  }
  function reading(prefix) {
    const volume = value(prefix + "-volume");
    if (!volume) return undefined;
    return { volume_l: volume, temperature_c: opt(prefix + "-temp"),
             reason: value(prefix + "-reason") || "人工录入" };
  }
  const readingRow = (prefix) => row(
    label("人工油量（升）", input(prefix + "-volume", { inputmode: "decimal", className: "short" })),
    label("油温（℃）", input(prefix + "-temp", { inputmode: "decimal", className: "short" })),
    label("原因", input(prefix + "-reason", { placeholder: "液位仪离线 / 量油尺" })));

  // ---------------------------------------------------------------- the pane

  const pane = el("div", { id: "pane-books", className: "pane", hidden: true });
  const sections = {
    delivery: el("div", { id: "books-delivery" }),
    nonsale: el("div", { id: "books-nonsale" }),
    correction: el("div", { id: "books-correction" }),
    month: el("div", { id: "books-month" }),
    accounts: el("div", { id: "books-accounts" }),
  };
  const names = { delivery: "卸油验收", nonsale: "非销售加油", correction: "泵码校正",
                  month: "月结", accounts: "挂账" };
  // What each section needs (edge/api/auth.py): an attendant puts a nozzle in non-sale mode;
  // the rest is the manager's.
  const needs = { delivery: "service", nonsale: "authorize", correction: "service",
                  month: "read", accounts: "service" };
  const sub = el("div", { className: "row", id: "books-sections" }, ...Object.keys(sections).map(
    (key) => { const b = el("button", { textContent: names[key], data: { section: key } });
               b.onclick = () => open(key); return b; }));
  pane.append(sub, ...Object.values(sections));
  let shown = "delivery";

  function open(key) {
    shown = key;
    for (const b of sub.querySelectorAll("button")) b.classList.toggle("primary", b.dataset.section === key);
    for (const [name, node] of Object.entries(sections)) node.hidden = name !== key;
    load(key).catch((e) => FC.status(e.message || FC.say("network"), "bad"));
  }

  async function load(key) {
    if (key === "delivery") return loadDeliveries();
    if (key === "month") return loadMonth();
    if (key === "accounts") return loadAccounts();
    if (key === "nonsale") return drawNonsale();
    return drawCorrection();
  }

  // ---------------------------------------------------------------- 卸油验收

  async function loadDeliveries() {
    const [open, detected, recent] = await Promise.all([
      FC.api("GET", "/api/v1/deliveries/receipts?status=open"),
      FC.api("GET", "/api/v1/deliveries/detected"),
      FC.api("GET", "/api/v1/deliveries/receipts?status=received&limit=5")]);
    const node = sections.delivery;
    node.replaceChildren(el("h3", { textContent: "进行中的卸油验收" }));
    for (const r of open.receipts) {
      node.append(el("div", { className: "form", data: { receipt: r.id } },
        el("p", { textContent: `${r.tank}号罐 · 提货单 ${r.bill.number} · 车牌 ${r.bill.truck} · 卸前 ${r.before.volume_l} 升` +
                               (r.paused_nozzles.length ? ` · 暂停油枪 ${r.paused_nozzles.join("、")}` : "") }),
        row(label("驾驶员", input("rcv-driver")), label("验收员", input("rcv-receiver")),
            label("监卸人", input("rcv-supervisor"))),
        readingRow("rcv-after"),
        row(label("超耗处理", select("rcv-outcome", { "": "（损耗在范围内不必选）", ...OUTCOMES }))),
        row(button("rcv-go", "验收完成", async () => {
          const done = await FC.api("POST", `/api/v1/deliveries/receipts/${r.id}/receive`, {
            driver: value("rcv-driver"), receiver: value("rcv-receiver"),
            supervisor: opt("rcv-supervisor"), after: reading("rcv-after"),
            outcome: opt("rcv-outcome") });
          await loadDeliveries();
          return { say: `验收完成：实收 ${done.received_l} 升，损耗 ${done.figures.loss_l} 升（${done.figures.loss_rate_percent}%），${OUTCOMES[done.outcome]}` };
        }, "primary"), button("rcv-cancel", "取消验收", async () => {
          await FC.api("POST", `/api/v1/deliveries/receipts/${r.id}/cancel`, { note: "取消" });
          await loadDeliveries();
        }))));
    }
    if (!open.receipts.length) node.append(el("p", { className: "muted", textContent: "没有进行中的卸油验收" }));
    const pending = detected.deliveries.filter((d) => !d.receipt_id);
    node.append(el("h3", { textContent: "开始卸油验收" }),
      el("div", { className: "form" },
        row(label("油罐", input("dlv-tank", { inputmode: "numeric", className: "short" })),
            label("液位仪发现的进油", select("dlv-detected", Object.fromEntries([["", "（手工开始）"],
              ...pending.map((d) => [d.delivery_id, `${d.tank}号罐 ${FC.when(d.ended_at)} +${d.volume_l}升`])])))),
        row(label("提货单号", input("dlv-number")), label("车牌", input("dlv-truck")),
            label("铅封号", input("dlv-seals", { placeholder: "多个用空格分开" }))),
        row(label("发油量（升）", input("dlv-volume", { inputmode: "decimal", className: "short" })),
            label("标准密度（千克/立方米）", input("dlv-density", { inputmode: "decimal", className: "short" })),
            label("发油温度（℃）", input("dlv-temp", { inputmode: "decimal", className: "short" }))),
        readingRow("dlv-before"),
        row(button("dlv-open", "开始验收", async () => {
          const detectedId = opt("dlv-detected");
          const found = pending.find((d) => d.delivery_id === detectedId);
          const opened = await FC.api("POST", "/api/v1/deliveries/receipts", {
            tank: Number(found ? found.tank : value("dlv-tank")), delivery_id: detectedId,
            bill: { number: value("dlv-number"), truck: value("dlv-truck"),
                    seals: value("dlv-seals").split(/[\s,，、]+/).filter(Boolean),
                    volume_l: value("dlv-volume"), density20: value("dlv-density"),
                    temperature_c: opt("dlv-temp") },
            before: reading("dlv-before") });
          await loadDeliveries();
          return opened;
        }, "primary"))));
    if (recent.receipts.length) {
      node.append(el("h3", { textContent: "最近的验收" }),
        grid(["时间", "油罐", "提货单号", "实收（升）", "损耗（升）", "损耗率%", "结论", "驾驶员", "验收员"],
             recent.receipts.map((r) => [FC.when(r.closed_at), r.tank + "号罐", r.bill.number,
               r.received_l, r.figures.loss_l, r.figures.loss_rate_percent, OUTCOMES[r.outcome],
               r.driver, r.receiver])));
    }
  }

  // ---------------------------------------------------------------- 非销售加油

  function drawNonsale() {
    sections.nonsale.replaceChildren(el("h3", { textContent: "非销售加油（不计销售、不收款、不打小票）" }),
      el("div", { className: "form" },
        row(label("油枪", input("ns-nozzle", { inputmode: "numeric", className: "short" })),
            label("类别", select("ns-kind", KINDS)),
            label("倒入油罐", input("ns-to", { inputmode: "numeric", className: "short" })),
            label("预置升数", input("ns-volume", { inputmode: "decimal", className: "short", value: "20.00" }))),
        row(label("原因", input("ns-reason", { value: "计量自检（20升标准罐）" })),
            label("见证人", input("ns-witnesses", { placeholder: "李站长 王主管" }))),
        row(button("ns-go", "授权非销售加油", async () => {
          const kind = value("ns-kind");
          const done = await FC.api("POST", `/api/v1/nozzles/${Number(value("ns-nozzle"))}/nonsale`, {
            kind, reason: value("ns-reason"),
            witnesses: value("ns-witnesses").split(/[\s,，、]+/).filter(Boolean),
            to_tank: kind === "transfer" ? Number(value("ns-to")) : undefined,
            preset: value("ns-volume") ? { volume: value("ns-volume") } : undefined });
          return { say: `${value("ns-nozzle")}号枪已授权${KINDS[kind]}，请提枪加油`, done };
        }, "primary"))));
    return Promise.resolve();
  }

  // ---------------------------------------------------------------- 泵码校正

  function drawCorrection() {
    sections.correction.replaceChildren(el("h3", { textContent: "泵码校正（清零、换主板）" }),
      el("div", { className: "form" },
        row(label("油枪", input("tc-nozzle", { inputmode: "numeric", className: "short" })),
            label("原因", select("tc-cause", CAUSES))),
        row(label("校正前升数", input("tc-bv", { inputmode: "decimal" })),
            label("校正前金额", input("tc-ba", { inputmode: "decimal" }))),
        row(label("校正后升数", input("tc-av", { inputmode: "decimal", value: "0.00" })),
            label("校正后金额", input("tc-aa", { inputmode: "decimal", value: "0.00" }))),
        row(label("说明", input("tc-note"))),
        row(button("tc-go", "记录校正", () => FC.api("POST", "/api/v1/totals/corrections", {
          nozzle: Number(value("tc-nozzle")), cause: value("tc-cause"), note: value("tc-note"),
          before: { volume_total: value("tc-bv"), amount_total: value("tc-ba") },
          after: { volume_total: value("tc-av"), amount_total: value("tc-aa") } }), "primary"))));
    return Promise.resolve();
  }

  // ---------------------------------------------------------------- 月结

  function lastMonth() {
    const now = new Date(Date.now() + (FC.info ? FC.info.station.utc_offset_minutes : 480) * 60000);
    const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
    return d.toISOString().slice(0, 7);
  }

  async function loadMonth(month) {
    const node = sections.month;
    const chosen = month || value("mc-month") || lastMonth();
    const body = await FC.api("GET", `/api/v1/books/months/${chosen}`);
    const line = (l) => [l.tank ? l.tank + "号罐" : "合计", l.grade_name, l.opening_l, l.received_l,
      l.sold_l, l.own_use_l, l.transfer_out_l + "/" + l.transfer_in_l, l.returned_l, l.adjustments_l,
      l.book_closing_l, l.closing_l, l.loss_l, l.loss_rate_percent, l.allowance_l,
      l.within_allowance === null ? "-" : l.within_allowance ? "正常" : "超耗"];
    node.replaceChildren(
      row(label("月份", input("mc-month", { type: "month", value: chosen })),
          button("mc-load", "查看", () => loadMonth(value("mc-month"))),
          button("mc-csv", "下载表格", () => download(`/api/v1/books/months/${chosen}/csv`, `进销存-${chosen}.csv`)),
          body.status === "closed" ? el("span", { className: "muted", textContent: "已月结（" + (body.closed_by || "") + "）" })
            : closeButton(chosen)),
      wide(el("div", { className: "report", id: "mc-report" },
        grid(["油罐", "油品", "期初", "进油", "销售", "自用", "倒罐出/入", "自检回罐", "调整",
              "账面库存", "实测库存", "损耗", "损耗率%", "允许损耗", ""],
             [...body.tanks.map(line), ...body.grades.map(line)]))));
  }

  // A wide table scrolls sideways in its box rather than past the pane's edge.
  function wide(node) { node.style.overflowX = "auto"; return node; }

  function closeButton(month) {
    const b = el("button", { id: "mc-close", textContent: "月结", className: "danger",
                             hidden: !FC.may("service") });
    b.onclick = () => FC.dialog(`${month} 月结`,
      [el("p", { textContent: "月结后该月数据不能再改，更正只能记入以后的月份。确定月结？" })],
      [FC.cancel, { label: "确定月结", cls: "danger", id: "mc-confirm", run: async () => {
        const closed = await FC.api("POST", `/api/v1/books/months/${month}/close`, {});
        setTimeout(() => loadMonth(month).then(() => FC.status(`${month} 已月结`, "ok")), 0);
        return closed;
      } }]);
    return b;
  }

  // ---------------------------------------------------------------- 挂账

  async function loadAccounts() {
    const found = await FC.api("GET", "/api/v1/accounts");
    const node = sections.accounts;
    const limit = (l) => [l.amount ? l.amount + "元" : null, l.volume ? l.volume + "升" : null,
      l.fills ? l.fills + "次" : null].filter(Boolean).join(" / ") || "不限";
    node.replaceChildren(el("h3", { textContent: "挂账单位" }),
      grid(["编号", "单位", "车牌", "卡号", "每日限额", "状态"], found.accounts.map((a) => [
        a.id, a.name, a.plates.join(" "), a.cards.join(" "), limit(a.limits),
        a.status === "active" ? "正常" : "停用：" + (a.blocked_reason || "")])),
      el("div", { className: "form" },
        el("h3", { textContent: "新增或修改挂账单位" }),
        row(label("编号", input("ac-id", { className: "short" })), label("单位名称", input("ac-name"))),
        row(label("车牌", input("ac-plates", { placeholder: "多个用空格分开" })),
            label("卡号", input("ac-cards"))),
        row(label("每日金额（元）", input("ac-amount", { inputmode: "decimal", className: "short" })),
            label("每日升数", input("ac-volume", { inputmode: "decimal", className: "short" })),
            label("每日次数", input("ac-fills", { inputmode: "numeric", className: "short" }))),
        row(button("ac-save", "保存", async () => {
          const list = (id) => value(id).split(/[\s,，、]+/).filter(Boolean);
          const saved = await FC.api("POST", "/api/v1/accounts", {
            id: value("ac-id"), name: value("ac-name"), plates: list("ac-plates"),
            cards: list("ac-cards"), limits: { amount: opt("ac-amount"), volume: opt("ac-volume"),
              fills: value("ac-fills") ? Number(value("ac-fills")) : undefined } });
          await loadAccounts();
          return saved;
        }, "primary"),
        button("ac-block", "停用", async () => {
          await FC.api("POST", `/api/v1/accounts/${value("ac-id")}/block`, { reason: value("ac-name") || "停用" });
          await loadAccounts();
        }),
        button("ac-unblock", "启用", async () => {
          await FC.api("POST", `/api/v1/accounts/${value("ac-id")}/unblock`);
          await loadAccounts();
        })),
        row(label("对账月份", input("ac-month", { type: "month", value: lastMonth() })),
            button("ac-csv", "下载对账单", () => download(
              `/api/v1/accounts/${value("ac-id")}/statement.csv?month=${value("ac-month")}`,
              `对账单-${value("ac-id")}-${value("ac-month")}.csv`)),
            button("ac-print", "打印对账单", () => FC.api("POST",
              `/api/v1/accounts/${value("ac-id")}/statement/print?month=${value("ac-month")}`)))));
  }

  // ---------------------------------------------------------------- the tab

  function showBooks(on) {
    pane.hidden = !on;
    tab.classList.toggle("on", on);
    if (on) {
      for (const other of document.querySelectorAll("#work-box > .pane")) if (other !== pane) other.hidden = true;
      for (const b of document.querySelectorAll("#tabs [data-tab]")) b.classList.remove("on");
      open(shown);
    }
  }
  // Not a data-tab button: the console's own tabs are theirs to switch; this one switches itself
  // and steps aside when one of theirs is chosen.
  const tab = el("button", { id: "tab-books", textContent: "账务", data: { perm: "read" } });
  tab.onclick = () => showBooks(true);

  function mount() {
    const tabs = $("tabs");
    const box = $("work-box");
    if (!tabs || !box || $("tab-books")) return;
    tabs.append(tab);
    box.append(pane);
    tabs.addEventListener("click", (ev) => {
      if (ev.target.closest && ev.target.closest("[data-tab]")) showBooks(false);
    }, true);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
  FC.on("login", () => {
    for (const b of sub.querySelectorAll("button")) b.hidden = !FC.may(needs[b.dataset.section]);
    if (!FC.may(needs[shown])) shown = FC.may("service") ? "delivery" : FC.may("authorize") ? "nonsale" : "month";
    tab.hidden = !FC.may("read");
    showBooks(false);
  });
})();
