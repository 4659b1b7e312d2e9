// The work pane: one tab per kind of work, shown by role (console.js holds the core).
// Lists are keyed (a sale by its id, an alarm by its seq): a live change patches the rows that
// changed and appends new ones at the end, so a row never moves under a finger.
"use strict";

(() => {
  const { $, el, setText, show, may, api, act, dialog, status, on } = window.FC;
  const FC = window.FC;
  const T = window.FC_TEXT;

  // ---------------------------------------------------------------- tabs

  const panes = {};
  let current = null;
  const loading = {};  // per pane: a load waiting, one running, another asked meanwhile
  let loads = 0;

  function pane(name, spec) { panes[name] = spec; }

  function showTab(name) {
    current = name;
    for (const b of document.querySelectorAll("#tabs [data-tab]")) b.classList.toggle("on", b.dataset.tab === name);
    for (const key of Object.keys(panes)) show($("pane-" + key), key === name);
    refresh(name, 0);
  }
  FC.showTab = showTab;

  // Refreshes a pane if it shows (a hidden one loads when it is shown). Events arriving
  // together are one load at most `wait` ms later, never postponed again by the next event
  // (a busy forecourt sends several a second); one load runs at a time.
  function refresh(name, wait = 300) {
    if (name !== current || FC.token === null) return;
    const st = loading[name] || (loading[name] = { timer: null, running: false, again: false });
    if (st.running) { st.again = true; return; }
    if (st.timer !== null && wait > 0) return;
    clearTimeout(st.timer);
    st.timer = setTimeout(async () => {
      st.timer = null;
      if (name !== current || FC.token === null) return;  // logged out meanwhile
      st.running = true;
      try {
        await panes[name].load();
        loads += 1;
        $("pane-" + name).dataset.loaded = String(loads);  // tests wait for the next one
      } catch (e) {
        status(e.message || FC.say("network"), "bad");
      } finally {
        st.running = false;
        if (st.again) { st.again = false; refresh(name); }
      }
    }, wait);
  }

  function whenEvents(types, name) {
    for (const type of types) on(type, () => refresh(name));
  }

  on("login", () => {
    for (const node of document.querySelectorAll("[data-perm]")) node.hidden = !may(node.dataset.perm);
    $("new-role").replaceChildren(...Object.entries(T.roles)
      .filter(([role]) => FC.role === "admin" || role !== "admin")
      .map(([role, name]) => el("option", { value: role, textContent: name })));
    showTab(FC.role === "finance" ? "report" : "sales");
    loadBadge();
  });
  on("logout", () => {
    current = null;
    for (const key of Object.keys(panes)) delete $("pane-" + key).dataset.loaded;
  });
  on("reconnected", () => { for (const key of Object.keys(panes)) refresh(key); loadBadge(); });

  // ---------------------------------------------------------------- 收款: unpaid sales, today

  const METHODS = ["cash", "wechat", "alipay", "card", "account"];

  function cents(text) { return Math.round(Number(text) * 100); }
  function money(c) { return (c / 100).toFixed(2); }
  function dueOf(sale) {
    return money(cents(sale.amount) - sale.payments.reduce((sum, p) => sum + cents(p.amount), 0));
  }
  function paymentsText(sale) {
    return sale.payments.map((p) => FC.methodName(p.method) + " " + FC.yuan(p.amount)).join(" + ");
  }

  const unpaidRows = new Map();

  function unpaidRow(sale) {
    const r = {
      root: el("div", { className: "item sale", id: "sale-" + sale.id, data: { sale: sale.id } }),
      head: el("span", { className: "grow" }),
      due: el("span", { className: "money" }),
      paid: el("span", { className: "muted" }),
      btns: el("span", { className: "btns" }),
    };
    r.root.append(r.head, r.paid, r.due, r.btns);
    if (may("payment")) {
      for (const method of METHODS) {
        const b = el("button", { className: "pay-" + method, textContent: FC.methodName(method) });
        b.onclick = () => pay(b, r.sale, method, dueOf(r.sale));
        r.btns.append(b);
      }
      const part = el("button", { className: "pay-part", textContent: "分开收" });
      part.onclick = () => splitDialog(r.sale);
      r.btns.append(part);
    }
    const receipt = el("button", { className: "receipt", textContent: "小票" });
    receipt.onclick = () => receiptDialog(r.sale);
    r.btns.append(receipt);
    return r;
  }

  function patchUnpaid(r, sale) {
    r.sale = sale;
    setText(r.head, FC.saleNo(sale) + "  " + FC.hm(sale.ended_at) + "  " + sale.nozzle + "号枪 "
      + sale.grade + "#  " + sale.volume + " 升  " + FC.yuan(sale.amount));
    setText(r.paid, sale.payments.length ? "已收 " + paymentsText(sale) : "");
    setText(r.due, "未付 " + FC.yuan(dueOf(sale)));
  }

  function showUnpaid(list) {
    const seen = new Set();
    for (const sale of list) {
      seen.add(sale.id);
      let r = unpaidRows.get(sale.id);
      if (!r) { r = unpaidRow(sale); unpaidRows.set(sale.id, r); $("unpaid").append(r.root); }
      patchUnpaid(r, sale);
    }
    for (const [id, r] of unpaidRows) {
      if (!seen.has(id)) { r.root.remove(); unpaidRows.delete(id); }
    }
    show($("unpaid-none"), list.length === 0);
    setText($("unpaid-count"), list.length ? list.length + " 笔，共 "
      + FC.yuan(money(list.reduce((sum, s) => sum + cents(dueOf(s)), 0))) : "");
  }

  function recentItem(sale) {
    const parts = [FC.saleNo(sale), FC.hm(sale.ended_at), sale.nozzle + "号枪 " + sale.grade + "#",
      sale.volume + " 升", FC.yuan(sale.amount)];
    const item = el("div", { className: "item" + (sale.paid ? " done" : ""), data: { sale: sale.id } },
      el("span", { className: "grow", textContent: parts.join("  ") }),
      el("span", { className: "tag " + (sale.paid ? "ok" : "bad"), textContent: sale.paid ? "已付" : "未付" }));
    const paid = sale.payments.filter((p) => p.method !== "app");
    if (paid.length) item.append(el("span", { className: "muted", textContent: paymentsText({ payments: paid }) }));
    if (sale.order) {
      let text = "APP预付 " + FC.yuan(sale.order.paid);
      if (sale.order.refund && Number(sale.order.refund) > 0) text += " · 退款 " + FC.yuan(sale.order.refund);
      item.append(el("span", { className: "tag warn", textContent: text }));
    }
    if (sale.receipt_prints) item.append(el("span", { className: "muted", textContent: "小票 " + sale.receipt_prints + " 张" }));
    const b = el("button", { className: "receipt", textContent: "小票" });
    b.onclick = () => receiptDialog(sale);
    item.append(b);
    return item;
  }

  const recentRows = new Map();

  // Newest first; a row is rebuilt only when its sale changed (paid, printed).
  function showRecent(list) {
    const box = $("recent");
    const seen = new Set();
    let before = box.firstChild;
    for (const sale of list) {
      seen.add(sale.id);
      const sig = JSON.stringify([sale.paid, sale.payments.length, sale.receipt_prints, sale.order]);
      let r = recentRows.get(sale.id);
      if (r && r.sig !== sig) { const fresh = recentItem(sale); r.root.replaceWith(fresh); r.root = fresh; r.sig = sig; }
      if (!r) { r = { root: recentItem(sale), sig }; recentRows.set(sale.id, r); box.insertBefore(r.root, before); }
      before = r.root.nextSibling;
    }
    for (const [id, r] of recentRows) if (!seen.has(id)) { r.root.remove(); recentRows.delete(id); }
  }

  pane("sales", {
    async load() {
      const data = await api("GET", "/api/v1/console/sales");
      showUnpaid(data.unpaid);
      showRecent(data.recent);
    },
  });
  whenEvents(["sale.completed", "payment.recorded"], "sales");

  async function pay(button, sale, method, amount) {
    await act(button, async () => {
      const after = await api("POST", "/api/v1/sales/" + sale.id + "/payments", { method, amount });
      const r = unpaidRows.get(sale.id);
      if (after.paid && r) { r.root.remove(); unpaidRows.delete(sale.id); show($("unpaid-none"), unpaidRows.size === 0); }
      else if (r) patchUnpaid(r, { ...after, receipt_prints: sale.receipt_prints });
      return after;
    }, { done: FC.saleNo(sale) + " 已收" + FC.methodName(method) + " " + FC.yuan(amount) });
  }

  function splitDialog(sale) {
    const amount = el("input", { id: "split-amount", inputMode: "decimal", value: dueOf(sale) });
    const method = el("select", { id: "split-method" },
      ...METHODS.map((m) => el("option", { value: m, textContent: FC.methodName(m) })));
    dialog(FC.saleNo(sale) + " 分开收款", [
      el("p", { textContent: "应收 " + FC.yuan(sale.amount) + "，未付 " + FC.yuan(dueOf(sale)) }),
      el("div", { className: "row" }, el("label", {}, "金额（元） ", amount), el("label", {}, "方式 ", method)),
    ], [FC.cancel, { label: "收款", cls: "primary", id: "split-ok", run: async () => {
      if (!/^[0-9]{1,6}(\.[0-9]{1,2})?$/.test(amount.value.trim()) || Number(amount.value) <= 0) {
        throw new FC.ApiError("invalid_payment", 0, "");
      }
      const after = await api("POST", "/api/v1/sales/" + sale.id + "/payments",
        { method: method.value, amount: amount.value.trim() });
      status(FC.saleNo(sale) + " 已收" + FC.methodName(method.value) + " " + FC.yuan(amount.value.trim()), "ok");
      refresh("sales", 0);
      return after;
    } }]);
  }

  let receiptUrl = null;

  async function receiptDialog(sale) {
    const img = el("img", { id: "receipt-img", alt: "小票预览" });
    const note = el("p", { className: "muted", id: "receipt-note",
      textContent: sale.receipt_prints ? "已打印 " + sale.receipt_prints + " 次，再打印为补打" : "还没有打印过" });
    const actions = [{ label: "关闭" }];
    if (may("receipt")) {
      actions.unshift({ label: sale.receipt_prints ? "补打小票" : "打印小票", cls: "primary", id: "receipt-print",
        run: async () => {
          const out = await api("POST", "/api/v1/sales/" + sale.id + "/receipt");
          status(FC.saleNo(sale) + " 小票已送打印" + (out.prints > 1 ? "（补打，第 " + out.prints + " 次）" : ""), "ok");
          refresh("sales", 0);
          return out;
        } });
    }
    dialog("小票 " + FC.saleNo(sale), [img, note], actions);
    try {
      // The preview needs the bearer token, which an <img src> cannot send: fetched as a blob.
      const r = await api("GET", "/api/v1/sales/" + sale.id + "/receipt.png", undefined, { raw: true });
      if (receiptUrl) URL.revokeObjectURL(receiptUrl);
      receiptUrl = URL.createObjectURL(await r.blob());
      img.src = receiptUrl;
    } catch (e) {
      img.hidden = true;
      setText(note, "无法预览：" + e.message);
    }
  }

  // ---------------------------------------------------------------- 报警: alarms, stops, reviews

  const SOURCE = { "printer.alarm": "小票机", "voice.alarm": "语音", "cloud.alarm": "总部连接",
    "reconciliation.discrepancy": "对账" };

  function alarmWhere(a) {
    if (a.pump) return a.pump + "号加油机";
    if (a.tank) return a.tank + "号罐";
    return SOURCE[a.type] || "";
  }

  function alarmTitle(a) {
    let name = FC.alarmName(a.kind);
    const code = a.data && a.data.code;
    if (code && typeof code === "string") {
      const hex = code.replace(/^0x/i, "").toUpperCase().padStart(2, "0");
      if (T.pump_codes[hex]) name += "（" + T.pump_codes[hex] + "）";
    }
    if (a.kind === "station_stop" && a.data) {
      name += a.data.all ? "：全站急停" : "";
      if (a.data.user) name += "，操作人 " + a.data.user;
    }
    return name;
  }

  const alarmRows = new Map();

  function alarmRow(a) {
    const r = { root: el("div", { className: "item", id: "alarm-" + a.seq, data: { seq: a.seq } }),
      text: el("span", { className: "grow" }), state: el("span", { className: "tag" }),
      ack: el("button", { className: "ack", textContent: "确认" }), by: el("span", { className: "muted" }) };
    r.ack.onclick = () => act(r.ack, () => api("POST", "/api/v1/alarms/" + a.seq + "/ack"),
      { done: "报警已确认" }).then(() => refresh("alarms", 0));
    r.root.append(r.text, r.state, r.by, r.ack);
    return r;
  }

  function showAlarms(list) {
    const box = $("alarm-list");
    const seen = new Set();
    // Newest first: a new alarm goes on top, the ones below are only patched.
    let before = box.firstChild;
    for (const a of list) {
      seen.add(a.seq);
      let r = alarmRows.get(a.seq);
      if (!r) {
        r = alarmRow(a);
        alarmRows.set(a.seq, r);
        box.insertBefore(r.root, before);
      }
      before = r.root.nextSibling;
      setText(r.text, FC.when(a.at) + "  " + alarmWhere(a) + "  " + alarmTitle(a));
      const label = a.status === "active" ? "报警中" : a.status === "cleared" ? "已消除" : "待查看";
      setText(r.state, label);
      r.state.className = "tag " + (a.status === "active" ? "bad" : a.status === "cleared" ? "ok" : "warn");
      r.root.className = "item " + (a.status === "active" ? "active" : "cleared");
      show(r.ack, !a.acknowledged && may("stop"));
      setText(r.by, a.acknowledged ? "已确认 · " + FC.actorName(a.acknowledged.by) + " " + FC.hm(a.acknowledged.at) : "");
    }
    for (const [seq, r] of alarmRows) if (!seen.has(seq)) { r.root.remove(); alarmRows.delete(seq); }
    show($("alarm-none"), list.length === 0);
  }

  function setBadge(count) {
    setText($("alarm-badge"), String(count));
    show($("alarm-badge"), count > 0);
  }

  async function loadBadge() {
    try {
      const data = await api("GET", "/api/v1/alarms?limit=200");
      const latched = [...FC.pumps.values()].filter((p) => p.stopped_by_station).length;
      setBadge(data.unacknowledged + latched);
      return data;
    } catch (e) { return null; }
  }
  let badgeTimer = null;
  function badgeSoon() {
    if (badgeTimer === null) badgeTimer = setTimeout(() => { badgeTimer = null; loadBadge(); }, 500);
  }

  const SERVICE_REASON = { impossible_figures: "加油数据不可能（超预置、超流速或与泵码不符）",
    unreadable_fill: "读不到加油记录" };
  const REVIEW_KIND = { one_witness: "泵码走了，加油机没有这笔记录", witnesses_disagree: "加油机记录与泵码不一致" };

  function reasonDialog(title, text, run) {
    const reason = el("textarea", { id: "reason", placeholder: "原因（至少两个字）" });
    dialog(title, [el("p", { textContent: text }), reason], [FC.cancel, { label: "确定", cls: "primary",
      id: "reason-ok", run: async () => {
        if (reason.value.trim().length < 2) { setText($("dialog-err"), "请填写原因"); return false; }
        return run(reason.value.trim());
      } }]);
  }

  async function loadWaiting() {
    const pumps = [...FC.pumps.values()];
    const stopped = pumps.filter((p) => p.stopped_by_station);
    $("stopped").replaceChildren(...stopped.map((p) => {
      const b = el("button", { className: "reset", textContent: "复位" });
      b.onclick = () => act(b, () => api("POST", "/api/v1/pumps/" + p.number + "/reset"),
        { done: p.number + "号加油机已复位" }).then(() => refresh("alarms", 0));
      show(b, may("stop"));
      const s = p.stopped_by_station;
      return el("div", { className: "item active" }, el("span", { className: "grow",
        textContent: p.number + "号加油机 已急停" + (s.all ? "（全站）" : "") + (s.by ? " · " + s.by : "")
          + (s.at ? " · " + FC.hm(s.at) : "") }), b);
    }));
    show($("stopped-box"), stopped.length > 0);
    const out = pumps.filter((p) => p.out_of_service);
    $("service").replaceChildren(...out.map((p) => {
      const b = el("button", { className: "release", textContent: "恢复使用" });
      b.onclick = () => reasonDialog(p.number + "号加油机 恢复使用", "请核对加油机显示和机械泵码后再恢复。",
        async (reason) => {
          await api("POST", "/api/v1/pumps/" + p.number + "/release", { reason });
          status(p.number + "号加油机已恢复使用", "ok");
          refresh("alarms", 0);
          return true;
        });
      show(b, may("service"));
      return el("div", { className: "item active" }, el("span", { className: "grow",
        textContent: p.number + "号加油机 停用：" + (SERVICE_REASON[p.out_of_service.reason] || "需要检查") }), b);
    }));
    show($("service-box"), out.length > 0);
    const reviews = (await api("GET", "/api/v1/reviews?status=open")).reviews;
    $("reviews").replaceChildren(...reviews.map((r) => {
      const text = FC.when(r.created_at) + "  " + r.pump + "号加油机 " + r.nozzle + "号枪 " + r.grade
        + "#  泵码多了 " + r.totals.volume_delta + " 升：" + (REVIEW_KIND[r.kind] || "");
      const item = el("div", { className: "item active", data: { review: r.id } }, el("span", { className: "grow", textContent: text }));
      if (may("service")) {
        const totals = el("button", { className: "accept", textContent: "按泵码记为交易" });
        totals.onclick = () => reasonDialog("记为交易", "按泵码 " + r.totals.volume_delta + " 升记一笔交易。",
          (reason) => settle(r, "accept", { figures: "totals", reason }));
        item.append(totals);
        if (r.filling) {
          const filling = el("button", { className: "accept-filling", textContent: "按加油机记录" });
          filling.onclick = () => reasonDialog("记为交易", "按加油机的记录 " + r.filling.volume + " 升记一笔交易。",
            (reason) => settle(r, "accept", { figures: "filling", reason }));
          item.append(filling);
        }
        const dismiss = el("button", { className: "dismiss", textContent: "不记交易" });
        dismiss.onclick = () => reasonDialog("不记交易", "这次泵码变化不记为交易（原因会记入审计日志）。",
          (reason) => settle(r, "dismiss", { reason }));
        item.append(dismiss);
      }
      return item;
    }));
    show($("reviews-box"), reviews.length > 0);
    if (may("users")) {
      const users = (await api("GET", "/api/v1/users")).users.filter((u) => u.locked_until || u.waiting_addresses > 0);
      $("locked").replaceChildren(...users.map((u) => {
        const b = el("button", { className: "unlock", textContent: "解锁" });
        b.onclick = () => act(b, () => api("POST", "/api/v1/users/" + encodeURIComponent(u.name) + "/unlock"),
          { done: u.name + " 已解锁" }).then(() => refresh("alarms", 0));
        return el("div", { className: "item active", data: { user: u.name } }, el("span", { className: "grow",
          textContent: u.name + "（" + FC.roleName(u.role) + "）密码输错太多次" + (u.locked_until ? "，锁定到 " + FC.hm(u.locked_until) : "") }), b);
      }));
      show($("locked-box"), users.length > 0);
    }
  }

  async function settle(review, what, body) {
    await api("POST", "/api/v1/reviews/" + review.id + "/" + what, body);
    status(what === "accept" ? "已记为交易" : "已处理，不记交易", "ok");
    refresh("alarms", 0);
    return true;
  }

  pane("alarms", {
    async load() {
      const data = await api("GET", "/api/v1/alarms?limit=200");
      showAlarms(data.alarms);
      const latched = [...FC.pumps.values()].filter((p) => p.stopped_by_station).length;
      setBadge(data.unacknowledged + latched);
      await loadWaiting();
    },
  });
  const ALARM_EVENTS = ["pump.alarm", "pump.alarm_cleared", "pump.released", "tank.alert", "printer.alarm",
    "voice.alarm", "cloud.alarm", "reconciliation.discrepancy", "alarm.acknowledged", "review.settled"];
  whenEvents(ALARM_EVENTS, "alarms");
  for (const type of ALARM_EVENTS) on(type, badgeSoon);
  // A pump latched or released changes the waiting lists: refreshed when its flags change.
  const flags = new Map();
  on("pump.state", (p) => {
    const now = JSON.stringify([p.stopped_by_station, p.out_of_service]);
    if (flags.get(p.number) !== now) { flags.set(p.number, now); refresh("alarms"); badgeSoon(); }
  });

  // ---------------------------------------------------------------- 油价: prices and schedules

  let prices = null;

  function zoneLabel() { return FC.info ? FC.info.station.zone_label : ""; }

  function scheduleItem(s) {
    const text = (s.state === "pending" ? "将于 " : "") + FC.when(s.effective_at) + "  "
      + Object.entries(s.prices).map(([g, p]) => g + "# " + p + " 元/升").join("，");
    const state = { pending: ["待生效", "warn"], applied: ["已生效", "ok"], cancelled: ["已取消", ""] }[s.state] || [s.state, ""];
    const by = s.source.startsWith("local:") ? s.source.slice(6) : s.source === "cloud" ? "总部" : FC.actorName(s.source);
    const item = el("div", { className: "item" + (s.state === "pending" ? "" : " done"), data: { schedule: s.price_set_id } },
      el("span", { className: "grow", textContent: text }), el("span", { className: "tag " + state[1], textContent: state[0] }),
      el("span", { className: "muted", textContent: s.state === "cancelled" ? "取消人 " + (s.cancelled_by || "") : "调价人 " + by }));
    if (s.state === "pending" && may("prices")) {
      const edit = el("button", { className: "edit", textContent: "修改" });
      edit.onclick = () => editSchedule(s);
      const cancel = el("button", { className: "cancel", textContent: "取消" });
      cancel.onclick = () => dialog("取消调价计划", [el("p", { textContent: text })], [{ label: "不取消" },
        { label: "取消这条计划", cls: "danger", id: "cancel-ok", run: async () => {
          await api("DELETE", "/api/v1/prices/schedules/" + encodeURIComponent(s.price_set_id));
          status("调价计划已取消", "ok");
          refresh("prices", 0);
          return true;
        } }]);
      item.append(edit, cancel);
    }
    return item;
  }

  pane("prices", {
    async load() {
      prices = await api("GET", "/api/v1/prices");
      $("price-list").replaceChildren(...prices.grades.map((g) => el("div", { className: "item", data: { grade: g.grade } },
        el("span", { className: "grow", textContent: g.grade + "#  " + g.name }),
        el("span", { className: "money", textContent: (g.price || "—") + " 元/升" }),
        el("span", { className: "muted", textContent: "一次调价不超过 ±" + g.band_percent + "%" }))));
      const select = $("price-grade");
      const chosen = select.value;
      select.replaceChildren(...prices.grades.map((g) => el("option", { value: g.grade, textContent: g.grade + "# " + g.name })));
      if (chosen) select.value = chosen;
      setText($("price-zone"), zoneLabel());
      if (!$("price-date").value) $("price-date").value = todayText();
      setText($("schedule-zone"), "（时间均为" + zoneLabel() + "）");
      $("schedules").replaceChildren(...(prices.schedules.length ? prices.schedules.map(scheduleItem)
        : [el("p", { className: "muted", textContent: "没有调价计划" })]));
    },
  });
  whenEvents(["price.applied"], "prices");

  function priceOf(grade) {
    const g = prices && prices.grades.find((x) => x.grade === grade);
    return g || null;
  }

  // The form's time as typed, in the station's zone ("2026-12-05T08:00"): never converted
  // through the browser's own zone.
  function typedTime(dateInput, timeInput) {
    const d = dateInput.value.trim().replace(/[年月/.]/g, "-").replace(/日$/, "");
    const t = timeInput.value.trim().replace(/[：点]/g, ":").replace(/分$/, "");
    const day = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(d);
    const hm = /^(\d{1,2}):(\d{2})$/.exec(t);
    if (!day || !hm || Number(hm[1]) > 23 || Number(hm[2]) > 59) return null;
    const two = (x) => String(Number(x)).padStart(2, "0");
    return day[1] + "-" + two(day[2]) + "-" + two(day[3]) + "T" + two(hm[1]) + ":" + hm[2];
  }

  function change(grade, value) {
    const g = priceOf(grade);
    const old = g && g.price ? cents3(g.price) : null;
    const now = cents3(value);
    const diff = old === null ? null : now - old;
    const pct = old ? (100 * diff / old) : null;
    const band = g ? Number(g.band_percent) : 15;
    return { g, old: g && g.price, value, diff, pct, beyond: pct !== null && Math.abs(pct) > band, band };
  }
  function cents3(text) { return Math.round(Number(text) * 1000); }
  function signed(milli) {
    const sign = milli < 0 ? "-" : "+";
    const abs = Math.abs(milli);
    return sign + (abs % 10 ? (abs / 1000).toFixed(3) : (abs / 1000).toFixed(2));
  }

  function changeLine(c) {
    const name = c.g ? c.g.name : "";
    if (c.old === null || c.old === undefined) return name + "：" + c.value + " 元/升";
    return name + "：" + c.old + " → " + c.value + " 元/升（" + signed(c.diff) + " 元，"
      + (c.pct >= 0 ? "+" : "") + c.pct.toFixed(1) + "%）";
  }

  // Old -> new with the difference, then confirm; beyond the band a second confirmation with a
  // reason. `send(extra)` makes the request.
  function confirmPrice(c, whenText, send) {
    const body = [el("p", { className: "change", id: "price-change", textContent: changeLine(c) }),
      el("p", { textContent: "生效：" + whenText })];
    if (c.beyond) body.push(el("p", { className: "warn", id: "price-warn", textContent: "超出 ±" + c.band + "% 的调价范围，请仔细核对！" }));
    dialog("确认调价", body, [FC.cancel, { label: c.beyond ? "继续" : "确认调价", cls: c.beyond ? "danger" : "primary",
      id: "price-ok", run: async () => {
        if (!c.beyond) return send({});
        secondConfirm(c, whenText, send);
        return false;
      } }]);
  }

  function secondConfirm(c, whenText, send) {
    const reason = el("textarea", { id: "price-reason", placeholder: "调价原因（必填）" });
    dialog("再次确认：超出调价范围", [el("p", { className: "change warn", textContent: changeLine(c) }),
      el("p", { textContent: "生效：" + whenText }), el("p", { textContent: "超出 ±" + c.band + "%，请填写原因后再确认。" }), reason],
    [FC.cancel, { label: "确认调价", cls: "danger", id: "price-ok2", run: async () => {
      if (reason.value.trim().length < 2) { setText($("dialog-err"), "请填写调价原因"); return false; }
      return send({ confirm_band: true, reason: reason.value.trim() });
    } }]);
  }

  function previewPrice() {
    const grade = $("price-grade").value;
    const value = $("price-value").value.trim();
    if (!/^[0-9]{1,4}(\.[0-9]{1,3})?$/.test(value) || Number(value) <= 0) {
      status("单价格式不对：如 7.62（最多三位小数）", "bad");
      return;
    }
    const later = $("price-later").checked;
    const at = later ? typedTime($("price-date"), $("price-time")) : null;
    if (later && !at) { status("请填写生效日期和时间（" + zoneLabel() + "）", "bad"); return; }
    const whenText = later ? at.slice(5, 10) + " " + at.slice(11) + "（" + zoneLabel() + "）" : "立即（加油机空闲时）";
    confirmPrice(change(grade, value), whenText, async (extra) => {
      const body = { prices: { [grade]: value }, ...extra };
      if (later) body.effective_local = at; else body.emergency = true;
      const out = await api("POST", "/api/v1/prices", body);
      $("price-value").value = "";
      status(later ? "已排入调价计划" : "已调价，加油机空闲时生效", "ok");
      refresh("prices", 0);
      return out;
    });
  }

  function editSchedule(s) {
    const [grade, value] = Object.entries(s.prices)[0];
    const price = el("input", { id: "edit-price", inputMode: "decimal", value });
    const date = el("input", { id: "edit-date", className: "date", placeholder: "年-月-日", value: s.effective_at.slice(0, 10) });
    const time = el("input", { id: "edit-time", className: "time", placeholder: "时:分", value: s.effective_at.slice(11, 16) });
    dialog("修改调价计划", [el("p", { textContent: grade + "# " + (priceOf(grade) || {}).name }),
      el("div", { className: "row" }, el("label", {}, "新单价 ", price)),
      el("div", { className: "row" }, el("label", {}, "日期 ", date), el("label", {}, "时间 ", time),
        el("span", { className: "zone", textContent: zoneLabel() }))],
    [FC.cancel, { label: "下一步", cls: "primary", id: "edit-ok", run: async () => {
      const at = typedTime(date, time);
      if (!at || !/^[0-9]{1,4}(\.[0-9]{1,3})?$/.test(price.value.trim())) { setText($("dialog-err"), "请填写单价和时间"); return false; }
      const c = change(grade, price.value.trim());
      setTimeout(() => confirmPrice(c, at.slice(5, 10) + " " + at.slice(11) + "（" + zoneLabel() + "）", async (extra) => {
        const out = await api("PUT", "/api/v1/prices/schedules/" + encodeURIComponent(s.price_set_id),
          { prices: { [grade]: price.value.trim() }, effective_local: at, ...extra });
        status("调价计划已修改", "ok");
        refresh("prices", 0);
        return out;
      }), 0);
      return true;
    } }]);
  }

  // ---------------------------------------------------------------- 班结: the shift

  function row(...cells) { return el("tr", {}, ...cells.map((c) => el("td", { textContent: c ?? "" }))); }
  function head(...cells) { return el("tr", {}, ...cells.map((c) => el("th", { textContent: c }))); }

  // The report as the printed one (edge/shifts.py report_document): per nozzle opening and
  // closing totals, the pumps' litres against the sales, then grades, payments and cash.
  function reportView(r) {
    const closed = r.status === "closed";
    const box = el("div", { className: "report", id: "shift-" + r.shift_id });
    box.append(el("h3", { textContent: "第 " + r.shift_id + " 班 " + (closed ? "班结报表" : "（当班，截至 " + FC.hm(r.as_of) + "）") }),
      el("p", { textContent: "开班 " + FC.when(r.opened_at) + (closed ? "  交班 " + FC.when(r.closed_at) + "  交班人 " + (r.closed_by || "") : "") }));
    // Litres unless said otherwise; the same lines as the printed report (起码, 止码, 泵码升数,
    // 销售升数, 销售金额, 差异).
    const nozzles = el("table", { className: "grid nozzles" }, head("油枪", "起码", closed ? "止码" : "当前码", "泵码升数",
      "销售升数", "金额（元）", "差异"));
    for (const n of r.nozzles) {
      const tr = row(n.nozzle + "号枪 " + (n.grade || "") + "#", n.open && n.open.volume_total, n.close && n.close.volume_total,
        n.delta && n.delta.volume, n.sales.volume, n.sales.amount, n.difference && n.difference.volume);
      if (n.mismatch) tr.className = "mismatch";
      nozzles.append(tr);
    }
    box.append(el("p", { className: "muted", textContent: "泵码（升）：每支油枪本班的起码、止码与销售对比" }),
      el("div", { className: "scroll-x" }, nozzles));
    const grades = el("table", { className: "grid" }, head("油品", "笔数", "升数", "金额"),
      ...r.grades.map((g) => row(g.grade + "#", g.count, g.volume, g.amount)));
    const pays = el("table", { className: "grid" }, head("收款方式", "笔数", "", "金额"),
      ...r.payments.map((p) => row(FC.methodName(p.method), p.count, "", p.amount)));
    box.append(grades, pays);
    const t = r.totals;
    const totals = el("div", { className: "totals" },
      el("span", {}, "交易 ", el("b", { textContent: r.counts.sales + " 笔" })),
      el("span", {}, "合计 ", el("b", { textContent: FC.yuan(t.amount) })),
      el("span", {}, "已收 ", el("b", { textContent: FC.yuan(t.paid) })),
      el("span", {}, "未收 ", el("b", { textContent: FC.yuan(t.due) })));
    if (r.cash) {
      totals.append(el("span", {}, "应收现金 ", el("b", { textContent: FC.yuan(r.cash.expected) })),
        el("span", {}, "实点现金 ", el("b", { textContent: FC.yuan(r.cash.counted) })),
        el("span", { className: Number(r.cash.over_short) ? "mismatch" : "" }, "长短款 ", el("b", { id: "over-short", textContent: FC.yuan(r.cash.over_short) })));
    }
    box.append(totals);
    if (r.counts.mismatches) box.append(el("p", { className: "mismatch", textContent: "泵码与销售不符：" + r.counts.mismatches + " 支油枪" }));
    if (r.unpaid.length) {
      box.append(el("p", { textContent: "未结销售 " + r.unpaid.length + " 笔：" + r.unpaid.map((s) =>
        (s.number || "") + " " + s.nozzle + "号枪 " + FC.yuan(s.due)).join("，") }));
    }
    if (r.close_reason) box.append(el("p", { className: "mismatch", textContent: "未结清仍交班，原因：" + r.close_reason }));
    return box;
  }

  async function loadShift(id) {
    const r = await api("GET", "/api/v1/shifts/" + (id || "current"));
    $("shift-report").replaceChildren(reportView(r));
  }

  pane("shift", { load: () => loadShift(null) });
  whenEvents(["sale.completed", "payment.recorded", "shift.closed"], "shift");

  async function closeShift() {
    const check = await api("GET", "/api/v1/shifts/current/check");
    const body = [];
    body.push(el("p", { textContent: "第 " + check.shift_id + " 班：交易 " + check.counts.sales + " 笔，合计 "
      + FC.yuan(check.totals.amount) + "，已收 " + FC.yuan(check.totals.paid) }));
    if (check.unpaid.length) {
      body.push(el("p", { className: "warn", id: "check-unpaid", textContent: "未收款 " + check.unpaid.length + " 笔，共 " + FC.yuan(check.unpaid_due) + "：" }),
        el("ul", {}, ...check.unpaid.map((s) => el("li", { textContent: (s.number || "") + "  " + s.nozzle + "号枪  未付 " + FC.yuan(s.due) }))));
    }
    if (check.open_authorizations.length) {
      body.push(el("p", { className: "warn", id: "check-auths", textContent: "未完成的授权 " + check.open_authorizations.length + " 个：" }),
        el("ul", {}, ...check.open_authorizations.map((a) => el("li", { textContent: a.pump + "号加油机 " + FC.hm(a.created_at)
          + (a.order_id ? " APP订单" : "") + (a.preset ? " 预置 " + Object.values(a.preset)[0] + (a.preset.amount ? " 元" : " 升") : " 加满") }))));
    }
    if (check.clear) body.push(el("p", { id: "check-clear", textContent: "没有未收款的交易，也没有未完成的授权。" }));
    const counted = el("input", { id: "cash-counted", inputMode: "decimal", placeholder: "如 1200.00" });
    const diff = el("b", { id: "cash-diff" });
    counted.oninput = () => {
      const v = counted.value.trim();
      setText(diff, /^[0-9]{1,7}(\.[0-9]{1,2})?$/.test(v) ? "长短款 " + FC.yuan(money(cents(v) - cents(check.cash_expected))) : "");
    };
    body.push(el("div", { className: "row" }, el("span", { textContent: "应收现金 " + FC.yuan(check.cash_expected) }),
      el("label", {}, "实点现金 ", counted), diff));
    const reason = el("textarea", { id: "close-reason", placeholder: "仍要班结的原因" });
    if (!check.clear) body.push(el("p", { textContent: "仍要班结请填写原因：" }), reason);
    if (check.closed_recently) body.push(el("p", { className: "warn", textContent: "上一班刚在 " + FC.hm(check.last_closed_at) + " 班结过。" }));
    dialog("班结前检查", body, [FC.cancel, { label: check.clear ? "确认班结" : "仍然班结", cls: "danger", id: "close-ok",
      run: async () => {
        const ask = {};
        const v = counted.value.trim();
        if (v) {
          if (!/^[0-9]{1,6}(\.[0-9]{1,2})?$/.test(v)) { setText($("dialog-err"), "实点现金格式不对"); return false; }
          ask.counted_cash = v;
        }
        if (!check.clear) {
          if (reason.value.trim().length < 2) { setText($("dialog-err"), "有未结清的交易或授权，请填写原因"); return false; }
          ask.reason = reason.value.trim();
        }
        return sendClose(ask);
      } }]);
  }

  async function sendClose(ask) {
    try {
      const r = await api("POST", "/api/v1/shifts/current/close", ask);
      $("shift-report").replaceChildren(reportView(r));
      status("第 " + r.shift_id + " 班已班结", "ok");
      return r;
    } catch (e) {
      if (e.code !== "shift_closed_recently") throw e;
      // A second close within a minute: asked first (a double click must not close an empty shift).
      setTimeout(() => dialog("再次班结？", [el("p", { id: "repeat-text", textContent: "上一班不到一分钟前刚班结过，确定现在再班结一次吗？" })],
        [{ label: "不班结" }, { label: "确定再班结", cls: "danger", id: "repeat-ok", run: () => sendClose({ ...ask, repeat: true }) }]), 0);
      return true;
    }
  }

  // ---------------------------------------------------------------- 日报: the day's report

  function bars(title, rows) {
    const max = Math.max(0, ...rows.map((r) => Number(r[1]) || 0));
    return el("div", { className: "chart" }, el("h3", { textContent: title }),
      ...rows.map(([label, value]) => {
        const bar = el("span", { className: "chart-bar" });
        bar.style.width = (max ? (60 * (Number(value) || 0) / max) : 0) + "%";  // CSSOM: allowed by the CSP
        return el("div", { className: "chart-row" }, el("span", { className: "chart-label", textContent: label }),
          bar, el("span", { className: "chart-value", textContent: FC.yuan(value) }));
      }));
  }

  pane("report", {
    async load() {
      const day = $("report-date").value.trim();
      if (day && !/^\d{4}-\d{2}-\d{2}$/.test(day)) { status("日期请按 年-月-日 填写，如 2026-12-05", "bad"); return; }
      const r = await api("GET", "/api/v1/reports/daily" + (day ? "?date=" + encodeURIComponent(day) : ""));
      if (!day) $("report-date").value = r.date;
      const t = r.totals;
      $("report").replaceChildren(
        el("div", { className: "totals", id: "report-totals" }, el("span", {}, "合计 ", el("b", { textContent: t.count + " 笔" })),
          el("span", {}, el("b", { textContent: t.volume + " 升" })), el("span", {}, el("b", { textContent: FC.yuan(t.amount) })),
          el("span", {}, "已收 ", el("b", { textContent: FC.yuan(t.paid) })), el("span", {}, "未收 ", el("b", { textContent: FC.yuan(t.unpaid) }))),
        bars("按油品", r.by_grade.map((g) => [g.name || g.grade, g.amount])),
        bars("按小时", r.by_hour.filter((h) => Number(h.amount) > 0).map((h) => [String(h.hour).padStart(2, "0") + "时", h.amount])),
        bars("按收款方式", r.by_method.map((m) => [FC.methodName(m.method), m.amount])));
    },
  });
  // Live: a sale or a payment today refreshes the figures shown.
  for (const type of ["sale.completed", "payment.recorded"]) {
    on(type, () => {
      const day = $("report-date").value;
      if (!day || (FC.info && day === todayText())) refresh("report", 800);
    });
  }
  function todayText() {
    const at = new Date(Date.now() + FC.info.station.utc_offset_minutes * 60000);
    return at.toISOString().slice(0, 10);
  }

  async function downloadReport() {
    const day = $("report-date").value;
    const r = await api("GET", "/api/v1/reports/daily.csv" + (day ? "?date=" + day : ""), undefined, { raw: true });
    const url = URL.createObjectURL(await r.blob());
    const a = el("a", { href: url, download: "日报-" + (day || todayText()) + ".csv" });
    document.body.append(a);
    a.click();
    a.remove();
    URL.revokeObjectURL(url);
  }

  // ---------------------------------------------------------------- 油罐: tanks

  const ALERT = { low_stock: "低库存", high_water: "水位过高", gauge_offline: "液位仪离线" };

  pane("tanks", {
    async load() {
      const data = await api("GET", "/api/v1/tanks");
      if (!data.tanks.length) { $("tanks").replaceChildren(el("p", { className: "muted", textContent: "本站没有配置油罐" })); return; }
      $("tanks").replaceChildren(...data.tanks.map((t) => {
        const alerts = t.alerts || [];
        const pct = t.volume_l !== null && Number(t.capacity) > 0 ? Math.min(100, 100 * Number(t.volume_l) / Number(t.capacity)) : 0;
        const fill = el("div", { className: "tank-fill" });
        fill.style.width = pct.toFixed(1) + "%";
        return el("div", { className: "tank" + (alerts.length ? " alerting" : ""), id: "tank-" + t.number },
          el("b", { textContent: t.number + "号罐 · " + t.grade + "#" + (t.gauge_online ? "" : " · 液位仪离线") }),
          el("div", { className: "tank-level" }, fill),
          el("div", { className: "muted", textContent: t.volume_l === null ? "暂无读数"
            : t.volume_l + " / " + t.capacity + " 升（" + pct.toFixed(0) + "%）· 水 " + t.water_mm + " 毫米" }),
          ...alerts.map((a) => el("div", { className: "alert", textContent: "⚠ " + (ALERT[a.kind] || FC.alarmName(a.kind)) })));
      }));
    },
  });
  whenEvents(["tank.reading", "tank.alert", "delivery.detected"], "tanks");

  // ---------------------------------------------------------------- 用户: users

  pane("users", {
    async load() {
      const data = await api("GET", "/api/v1/users");
      $("users").replaceChildren(...data.users.map((u) => {
        const state = u.disabled_at ? ["已停用", "bad"] : u.locked_until ? ["锁定到 " + FC.hm(u.locked_until), "warn"]
          : u.waiting_addresses ? ["密码输错多次", "warn"] : ["正常", "ok"];
        const item = el("div", { className: "item", data: { user: u.name } },
          el("span", { className: "grow", textContent: u.name + "  " + FC.roleName(u.role) }),
          el("span", { className: "tag " + state[1], textContent: state[0] }));
        if (u.role !== "admin" || FC.role === "admin") {
          const toggle = el("button", { className: u.disabled_at ? "enable" : "disable", textContent: u.disabled_at ? "启用" : "停用" });
          toggle.onclick = () => act(toggle, () => api("POST", "/api/v1/users/" + encodeURIComponent(u.name) + (u.disabled_at ? "/enable" : "/disable")),
            { done: u.name + (u.disabled_at ? " 已启用" : " 已停用") }).then(() => refresh("users", 0));
          const reset = el("button", { className: "reset-pin", textContent: "重置密码" });
          reset.onclick = () => pinDialog(u);
          item.append(toggle, reset);
          if (u.locked_until || u.waiting_addresses) {
            const unlock = el("button", { className: "unlock", textContent: "解锁" });
            unlock.onclick = () => act(unlock, () => api("POST", "/api/v1/users/" + encodeURIComponent(u.name) + "/unlock"),
              { done: u.name + " 已解锁" }).then(() => refresh("users", 0));
            item.append(unlock);
          }
        }
        return item;
      }));
    },
  });

  function pinDialog(u) {
    const pin = el("input", { id: "reset-pin", type: "password", inputMode: "numeric", autocomplete: "new-password" });
    dialog("重置 " + u.name + " 的密码", [el("label", {}, "新密码（4到12位数字） ", pin)], [FC.cancel,
      { label: "保存", cls: "primary", id: "reset-ok", run: async () => {
        if (!/^[0-9]{4,12}$/.test(pin.value)) { setText($("dialog-err"), "密码为4到12位数字"); return false; }
        const out = await api("POST", "/api/v1/users", { name: u.name, role: u.role, pin: pin.value });
        status(u.name + " 的密码已重置，原来的登录已退出", "ok");
        refresh("users", 0);
        return out;
      } }]);
  }

  async function addUser() {
    const name = $("new-user").value.trim();
    const pin = $("new-pin").value;
    if (!name) { status("请填写用户名", "bad"); return; }
    if (!/^[0-9]{4,12}$/.test(pin)) { status("密码为4到12位数字", "bad"); return; }
    await act($("user-add"), async () => {
      const out = await api("POST", "/api/v1/users", { name, role: $("new-role").value, pin });
      $("new-user").value = "";
      $("new-pin").value = "";
      refresh("users", 0);
      return out;
    }, { done: name + " 已添加" });
  }

  // ---------------------------------------------------------------- 审计: the audit log

  function presetText(preset) {
    if (!preset) return "加满";
    if (preset.amount) return "预置 " + preset.amount + " 元";
    return "预置 " + preset.volume + " 升";
  }

  function auditWhat(e) {
    const d = e.details || {};
    const body = d.body || {};
    const change = d.change || {};
    const target = e.target || "";
    switch (e.action) {
      case "nozzle.authorize": return target + "号枪 " + presetText(body.preset);
      case "pump.stop": case "pump.reset": case "pump.suspend": case "pump.resume": return target + "号加油机";
      case "pump.release": return target + "号加油机，原因：" + (body.reason || d.reason || "");
      case "forecourt.stop": return "全部加油机";
      case "sale.payment": return "交易 " + (e.sale_number || "") + " " + FC.methodName(body.method) + " " + FC.yuan(body.amount || "");
      case "sale.receipt": return "交易 " + (e.sale_number || "");
      case "prices.schedule": case "prices.reschedule": {
        const lines = (change.changes || []).map((c) => c.grade + "# " + (c.old || "—") + " → " + c.new
          + (c.difference ? "（" + c.difference + " 元，" + c.percent + "%）" : ""));
        let text = lines.join("，") + (change.effective_at ? "，生效 " + FC.when(change.effective_at) : "");
        if (change.emergency) text += "（立即）";
        if (change.reason) text += "，原因：" + change.reason;
        return text;
      }
      case "prices.cancel": return "调价计划";
      case "shift.close": return (body.counted_cash ? "实点现金 " + FC.yuan(body.counted_cash) : "")
        + (body.reason ? " 原因：" + body.reason : "");
      case "user.save": return (body.name || "") + " " + FC.roleName(body.role || "");
      case "user.disable": case "user.enable": case "user.unlock": return target;
      case "alarm.ack": return "报警 " + target;
      case "review.accept": case "review.dismiss": return body.reason ? "原因：" + body.reason : "";
      case "session.open": case "session.failed": return d.address ? "地址 " + d.address : "";
      case "session.failures": return "共 " + ((d.unknown_user || 0) + (d.throttled || 0) + (d.busy || 0)) + " 次";
      default: return "";
    }
  }

  pane("audit", {
    async load() {
      const data = await api("GET", "/api/v1/console/audit?limit=100");
      $("audit").replaceChildren(...data.entries.map((e) => el("div", { className: "item", data: { seq: e.seq } },
        el("span", { className: "muted", textContent: FC.when(e.at) }),
        el("span", { textContent: FC.actorName(e.actor) + (e.role ? "（" + FC.roleName(e.role) + "）" : "") }),
        el("b", { textContent: T.actions[e.action] || "其他操作" }),
        el("span", { className: "grow", textContent: auditWhat(e) }),
        el("span", { className: "tag " + (e.outcome === "ok" ? "ok" : "bad"),
          textContent: e.outcome === "ok" ? "成功" : "未执行：" + FC.say(e.outcome) }))));
    },
  });

  // ---------------------------------------------------------------- wiring

  document.addEventListener("DOMContentLoaded", () => {
    for (const b of document.querySelectorAll("#tabs [data-tab]")) b.onclick = () => showTab(b.dataset.tab);
    $("price-preview").onclick = previewPrice;
    for (const id of ["price-date", "price-time"]) $(id).addEventListener("input", () => { $("price-later").checked = true; });
    $("shift-refresh").onclick = () => refresh("shift", 0);
    $("shift-close").onclick = () => closeShift().catch((e) => status(e.message, "bad"));
    $("shift-load").onclick = () => {
      const n = $("shift-no").value.trim();
      if (!/^[0-9]{1,9}$/.test(n)) { status("请输入班次号", "bad"); return; }
      loadShift(n).catch((e) => status(e.message, "bad"));
    };
    $("report-load").onclick = () => refresh("report", 0);
    $("report-csv").onclick = () => downloadReport().catch((e) => status(e.message, "bad"));
    $("user-add").onclick = addUser;
    $("audit-load").onclick = () => refresh("audit", 0);
  });
})();
