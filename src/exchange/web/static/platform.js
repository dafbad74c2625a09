// 平台时钟: the platform clock, advanced by the operator, and what it makes due
// (overdue reviews, expired grants).
import {html, put, tag, table, fmtTime, T} from "/ui.js";
import {S, api, dept, notice, refreshClock, refreshBadges} from "/core.js";
import {deadlineCell} from "/applications.js";

export async function loadPlatform() {
  await refreshClock();
  const c = S.clock;
  const me = S.me || {};
  const presets = ["1d", "3d", "5d", "10d", "2w", "30d", "52w"];
  put("platform-clock", html`<div class="card"><h3>${T("平台时间")} ${fmtTime(c.now)} <span class="en">${T("北京时间 · 今天 {d}", {d: c.today})}</span></h3>
    <p>${T("偏移：{d} 天（{s} 秒）。审核期限、逾期标记与授权到期都以平台时钟为准。", {d: (c.offset_seconds / 86400).toFixed(2), s: c.offset_seconds})}</p>
    ${me.operator ? html`<form data-form="advance" class="row"><span>${T("推进时钟")}</span>
        ${presets.map((p) => html`<button type="button" data-act="advance" data-by="${p}">+${p}</button>`)}
        <label for="adv-by" class="sr-only">${T("推进")}</label><input id="adv-by" name="by" size="6" placeholder="36h"><button>${T("推进")}</button></form>`
      : html`<p class="muted">${T("仅平台运营方可推进时钟（切换到运营方身份）。")}</p>`}</div>`);
  const [overdue, pending, expired] = await Promise.all([
    api("applications", {q: {role: "provider", overdue: "true", limit: 100}}),
    api("applications", {q: {role: "provider", status: "pending_review", limit: 100}}),
    api("grants", {q: {status: "expired", limit: 100}}),
  ]);
  const pendingRows = pending.items.map((a) => html`<tr class="click ${a.overdue ? "overdue" : ""}" tabindex="0" data-act="goto-app" data-id="${a.id}" data-pane="review"><td>#${a.id}</td><td>${a.topic_name}</td><td>${dept(a.consumer)} → ${dept(a.provider)}</td><td>${deadlineCell(a)}</td></tr>`);
  const expiredRows = expired.items.map((g) => html`<tr class="click" tabindex="0" data-act="goto-grant" data-id="${g.id}"><td>#${g.id}</td><td>${dept(g.consumer)} → ${dept(g.provider)}</td><td><code>${g.topic}</code></td><td>${g.valid_until} ${tag("grant_status", g.status)}</td></tr>`);
  put("platform-effects", html`<div class="cols">
    <div class="card"><h4>${T("逾期未审")} · ${overdue.total} / ${T("待审 {n}", {n: pending.total})}</h4>
      ${table([T("申请"), T("主题"), T("申请 → 提供"), T("审核期限")], pendingRows, T("暂无待审核的申请。"), 'id="pending-table"')}</div>
    <div class="card"><h4>${T("已过期授权")} · ${expired.total}</h4>
      ${table([T("授权"), T("申请 → 提供"), T("主题"), T("有效期至")], expiredRows, T("暂无已过期的授权。"), 'id="expired-table"')}</div></div>`);
}
export async function advance(by) {
  const c = await api("advance", {json: {by}});
  await loadPlatform();
  notice(T("平台时钟已推进 {by}，现在 {t}（北京）。", {by, t: fmtTime(c.now)}));
  refreshBadges();
}
