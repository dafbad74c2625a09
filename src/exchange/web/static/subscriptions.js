// 订阅分发: a department's subscriptions and how each is doing — backlog, lag from the
// source's change to delivery, delivered / retried / dead-lettered counts, why delivery is
// blocked — and its dead letters, which the consumer retries or discards
// (GET /api/v1/subscriptions, …/{id}/dead-letters, …/dead-letters/retry|discard).
import {html, put, table, fmtNum, fmtTime, T} from "/ui.js";
import {api, deptName, notice, newest} from "/core.js";

function lag(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export async function loadSubscriptions() {
  const current = newest("subs-list");
  const page = await api("subscriptions", {q: {limit: 100}});
  if (!current()) return;
  const rows = page.items.map((s) => {
    const st = s.stats;
    const trouble = st.blocked || st.last_error;
    return html`<tr data-sub="${s.id}">
      <td>#${s.id}</td><td>${s.source === "catalog" ? T("目录变更") : html`<code>${s.topic}</code> ${deptName(s.provider)}`}</td>
      <td>${deptName(s.consumer)}</td><td>${s.delivery === "push" ? T("推送") : T("拉取")}</td>
      <td><span class="tag ${s.status === "active" ? "approved" : "pending_review"}">${s.status === "active" ? T("生效") : T("暂停")}</span></td>
      <td class="num" data-col="backlog">${fmtNum(st.backlog)}</td><td class="num" data-col="lag">${lag(st.last_lag_ms)}</td>
      <td class="num" data-col="delivered">${fmtNum(st.delivered)}</td><td class="num" data-col="retried">${fmtNum(st.retried)}</td>
      <td class="num" data-col="dead">${fmtNum(st.dead_letters)} / ${fmtNum(st.dead_lettered)}</td>
      <td class="small">${st.last_delivered_at ? fmtTime(st.last_delivered_at) : "—"}${trouble ? html`<div class="err">${st.blocked ? T("受阻：{why}", {why: st.blocked}) : st.last_error}</div>` : ""}</td>
      <td>${st.dead_letters ? html`<button data-act="sub-dead" data-id="${s.id}">${T("死信")}</button>` : ""}</td></tr>`;
  });
  put("subs-list", html`<p class="muted">${T("共 {n} 个订阅", {n: page.total})} · <button data-act="sub-reload">${T("刷新")}</button></p>
    ${table([T("编号"), T("来源"), T("订阅单位"), T("方式"), T("状态"), T("积压"), T("延迟"), T("已送达"), T("重试"), T("死信（现存/累计）"), T("最近送达"), ""], rows, T("尚无订阅"), 'id="subs-table"')}`);
  put("subs-dead", "");
}

export async function loadDeadLetters(subId) {
  const current = newest("subs-dead");
  const page = await api("deadLetters", {p: {sub_id: subId}, q: {limit: 100}});
  if (!current()) return;
  const rows = page.items.map((d) => html`<tr><td>#${d.id}</td><td>${d.event_id}</td><td class="num">${d.attempts}</td>
    <td class="small">${d.error}</td><td class="small">${fmtTime(d.dead_at)}</td></tr>`);
  put("subs-dead", html`<div class="card" id="dead-card" data-sub="${subId}"><h3>${T("订阅 #{id} 的死信", {id: subId})}</h3>
    <p class="muted small">${T("多次推送失败或超时的事件：修复接收端后重试，或确认后丢弃。")}</p>
    ${table([T("编号"), T("事件编号"), T("尝试次数"), T("错误"), T("转入死信")], rows, T("无"))}
    ${page.total ? html`<div class="row"><button class="primary" data-act="sub-retry" data-id="${subId}">${T("全部重试")}</button>
      <button class="danger" data-act="sub-discard" data-id="${subId}">${T("全部丢弃")}</button></div>` : ""}</div>`);
}

export async function settleDeadLetters(subId, how) {
  const opts = {p: {sub_id: subId}, json: {}};
  const done = how === "retry" ? await api("retryDeadLetters", opts) : await api("discardDeadLetters", opts);
  await loadSubscriptions();
  notice(how === "retry" ? T("已重新投递 {n} 条", {n: done.count}) : T("已丢弃 {n} 条", {n: done.count}));
}
