// 我的申请 / 审核待办: the consumer's applications, the provider's inbox, and an application's
// detail with its review (approve, reject) and dispute forms.
import {$, html, put, tag, label, table, fmtTime, T, codeText} from "/ui.js";
import {codesOf} from "/glossary.js";
import {S, api, dept, deptName, itemName, detailText, topicOf, showError, notice, refreshBadges, platformNow, newest} from "/core.js";

export function filterBar(pre, role) {
  const st = pre === "review" ? "pending_review" : "";
  return html`<label for="${pre}-status" class="sr-only">${T("状态")}</label><select id="${pre}-status"><option value="">${T("全部状态")}</option>${codesOf("app_status").map((s) => html`<option value="${s}" ${s === st ? "selected" : ""}>${codeText("app_status", s)}</option>`)}</select>
    <label><input type="checkbox" id="${pre}-overdue"> ${T("仅逾期")}</label>
    <label for="${pre}-topic" class="sr-only">${T("资源代码")}</label><input id="${pre}-topic" placeholder="${T("资源代码 101001001/000001")}" size="22">
    <button data-act="reload-apps" data-role="${role}">${T("刷新")}</button>`;
}

function counts(app) {
  const c = {};
  for (const d of app.decisions) c[d.outcome] = (c[d.outcome] || 0) + 1;
  return codesOf("outcome").filter((o) => c[o]).map((o) => html`<span class="tag ${o}" title="${o}">${codeText("outcome", o)} ${c[o]}</span> `);
}
export function deadlineCell(app) {
  if (!app.review_deadline) return html`<span class="muted">—</span>`;
  const pending = app.status === "pending_review";
  const left = (new Date(app.review_deadline) - platformNow()) / 86400000;
  let note = "";
  if (app.overdue) note = html` <span class="tag late">${T("已逾期 {d} 天", {d: Math.abs(left).toFixed(1)})}</span>`;
  else if (pending) note = html` <span class="muted small" title="${T("日历日；期限本身按工作日计算")}">${T("剩 {d} 天", {d: left.toFixed(1)})}</span>`;
  return html`<span class="nowrap">${fmtTime(app.review_deadline)}</span>${note}`;
}

export async function loadApps(role) {
  const pre = role === "consumer" ? "apps" : "review";
  const current = newest(pre + "-list");
  const p = new URLSearchParams({role, limit: 200});
  if ($(pre + "-status").value) p.set("status", $(pre + "-status").value);
  if ($(pre + "-overdue").checked) p.set("overdue", "true");
  if ($(pre + "-topic").value.trim()) p.set("topic", $(pre + "-topic").value.trim());
  const page = await api("applications", {q: p});
  if (!current()) return;
  const other = role === "consumer" ? "provider" : "consumer";
  const both = S.me && S.me.operator;
  const head = [T("编号"), T("主题")].concat(both ? [T("申请单位"), T("提供单位")] : [role === "consumer" ? T("提供单位") : T("申请单位")],
    [T("信息项结果"), T("状态"), T("提交时间"), T("审核期限"), T("授权 / 争议")]);
  const rows = page.items.map((a) => html`<tr class="click ${a.overdue ? "overdue" : ""}" tabindex="0" data-act="open-app" data-id="${a.id}" data-pane="${pre}">
      <td>#${a.id}</td><td>${a.topic_name}<br><code>${a.topic}</code></td>
      ${both ? html`<td>${dept(a.consumer)}</td><td>${dept(a.provider)}</td>` : html`<td>${dept(a[other])}</td>`}
      <td>${counts(a)}</td><td>${tag("app_status", a.status)}</td><td class="nowrap">${fmtTime(a.submitted_at)}</td><td>${deadlineCell(a)}</td>
      <td>${a.grant_id ? T("授权 #{id}", {id: a.grant_id}) : ""} ${a.dispute_id ? html`<span class="tag disputed">${T("争议 #{id}", {id: a.dispute_id})}</span>` : ""}</td></tr>`);
  put(pre + "-list", html`<p class="muted small">${T("共 {n} 件", {n: page.total})}${both ? T("（运营方可见全部）") : ""}；${T("审核期限按工作日计算，逾期以平台时钟为准。")}</p>
    ${table(head, rows, role === "consumer" ? T("暂无申请。可在“目录检索”中打开资源并提交申请。") : T("暂无待审核的申请。"))}`);
}

export function outcomeSummary(app) {
  const by = (o) => app.decisions.filter((d) => d.outcome === o);
  const granted = by("granted"), pending = by("pending"), refused = by("refused"), rejected = by("rejected");
  const fields = (ds) => ds.map((d) => html`<code>${d.field}</code> `);
  return html`<ul class="outcomes">
    ${granted.length ? html`<li>${tag("outcome", "granted")} ${T("{n} 项已授权", {n: granted.length})}${app.grant_id ? html`（${T("授权 #{id}", {id: app.grant_id})}）` : ""}：${fields(granted)}</li>` : ""}
    ${pending.length ? html`<li>${tag("outcome", "pending")} ${T("{n} 项有条件共享，待 {who} 审核，期限 {t}（10 个工作日）", {n: pending.length, who: deptName(app.provider), t: fmtTime(app.review_deadline)})}${app.overdue ? html` <span class="tag late">${T("已逾期")}</span>` : ""}</li>` : ""}
    ${refused.length ? html`<li>${tag("outcome", "refused")} ${T("{n} 项不予共享", {n: refused.length})}：${fields(refused)}</li>` : ""}
    ${rejected.length ? html`<li>${tag("outcome", "rejected")} ${T("{n} 项未通过", {n: rejected.length})}：${fields(rejected)}</li>` : ""}
  </ul>`;
}

// Each item's own reason: the glossary's words for its code, then the text given for it.
export function decisionsTable(app, t) {
  const rows = app.decisions.map((d) => html`<tr data-field="${d.field}"><td><code>${d.field}</code></td><td>${itemName(t, d.field)}</td><td>${tag("sharing", d.sharing_type)}</td>
    <td>${tag("outcome", d.outcome)}</td><td class="reason">${codeText("reason", d.reason_code)}${d.reason ? html`<br><span class="small">${d.reason}</span>` : ""}</td></tr>`);
  return table([T("字段"), T("信息项"), T("共享类型"), T("结果"), T("说明 / 依据")], rows, T("无"), 'class="decisions"');
}

export async function openApp(id, pane) {
  const current = newest(pane + "-detail");
  const app = await api("application", {p: {app_id: id}});
  const t = await topicOf(app.topic).catch(() => null);
  if (!current()) return;
  for (const tr of $(pane + "-list").querySelectorAll("tr[data-id]")) tr.classList.toggle("sel", tr.dataset.id === String(id));
  const me = S.me || {};
  const canReview = (me.operator || me.code === app.provider) && app.status === "pending_review";
  const pending = app.decisions.filter((d) => d.outcome === "pending");
  const refused = app.decisions.filter((d) => d.outcome === "refused" || d.outcome === "rejected");
  const canDispute = me.code === app.consumer && refused.length && !app.dispute_id && app.status !== "pending_review";
  const events = (app.events || []).map((ev) => html`<li><span class="nowrap">${fmtTime(ev.at)}</span> · ${dept(ev.actor)} · <b>${codeText("event", ev.kind)}</b>
    ${ev.reason ? html` · ${T("理由")}${T("：")}${ev.reason}` : ""} ${Object.keys(ev.detail || {}).length ? html` · ${detailText(ev.detail)}` : ""}</li>`);
  const reviewForms = canReview ? html`<div class="cols">
    <div class="card form"><h4>${T("审核通过")} <span class="en">POST …/approve</span></h4>
      <form data-form="approve" data-id="${app.id}" data-pane="${pane}"><div class="grid">
        <span id="rv-items-l">${T("通过的信息项")}</span><div class="items" role="group" aria-labelledby="rv-items-l">${pending.map((d) => html`<label><input type="checkbox" name="items" value="${d.field}" checked> ${itemName(t, d.field)} <code>${d.field}</code></label>`)}</div>
        <label for="rv-until">${T("有效期至")}</label><div><input type="date" id="rv-until" name="valid_until" value="${app.valid_until}" max="${app.valid_until}"> <span class="small muted">${T("不晚于申请")}</span></div>
        <label for="rv-quota">${T("每日限额")}</label><div><input type="number" id="rv-quota" name="quota" min="1" ${app.daily_quota ? html`max="${app.daily_quota}" value="${app.daily_quota}"` : ""}> <span class="small muted">${T("不高于申请（{q}）", {q: app.daily_quota || T("不限")})}</span></div>
        <label for="rv-reason">${T("理由")}</label><input id="rv-reason" name="reason" size="40" placeholder="${T("部分通过（去掉信息项）时必填")}">
        <span></span><div><button class="primary">${T("通过")}</button></div></div></form></div>
    <div class="card form"><h4>${T("退回")} <span class="en">POST …/reject</span></h4>
      <form data-form="reject" data-id="${app.id}" data-pane="${pane}">
        <p class="small muted">${T("退回全部待审信息项；依规定必须说明理由。")}</p>
        <label class="req" for="rj-reason">${T("退回理由")}</label><br><textarea id="rj-reason" name="reason" rows="3" cols="44" required placeholder="${T("如：申请用途不属于本资源的共享条件")}"></textarea><br>
        <button class="danger">${T("退回")}</button></form></div></div>` : "";
  const disputeForm = canDispute ? html`<div class="card form"><h4>${T("提起争议协调")} <span class="en">POST …/dispute</span></h4>
    <form data-form="dispute" data-id="${app.id}"><div class="grid">
      <span id="dp-items-l">${T("争议信息项")}</span><div class="items" role="group" aria-labelledby="dp-items-l">${refused.map((d) => html`<label><input type="checkbox" name="items" value="${d.field}" checked> ${itemName(t, d.field)} <code>${d.field}</code> ${tag("outcome", d.outcome)}</label>`)}</div>
      <label class="req" for="dp-reason">${T("理由")}</label><textarea id="dp-reason" name="reason" rows="3" cols="50" required placeholder="${T("为何履职确需该数据")}"></textarea>
      <span></span><div><button class="primary">${T("提起争议")}</button></div></div></form></div>` : "";
  put(pane + "-detail", html`<div class="card"><h3>${T("申请 #{id}", {id: app.id})} · ${app.topic_name} <code>${app.topic}</code> ${tag("app_status", app.status)} ${app.overdue ? html`<span class="tag late">${T("逾期")}</span>` : ""}</h3>
    <div class="grid">
      <span>${T("申请单位 → 提供单位")}</span><div>${dept(app.consumer)} → ${dept(app.provider)}</div>
      <span>${T("用途")}</span><div>${label("scope", app.purpose.scope)} · ${app.purpose.text}</div>
      <span>${T("履职依据")}</span><div>${app.legal_function}</div>
      <span>${T("有效期")}</span><div>${app.valid_from} ${T("至")} ${app.valid_until}</div>
      <span>${T("每日限额 · 交付")}</span><div>${app.daily_quota ? html`${app.daily_quota} ${T("条/天")}` : T("不限")} · ${codeText("delivery", app.delivery)}</div>
      <span>${T("提交 · 审核期限")}</span><div>${fmtTime(app.submitted_at)} · ${deadlineCell(app)}</div>
      ${app.reviewed_at ? html`<span>${T("审核")}</span><div>${fmtTime(app.reviewed_at)} · ${dept(app.reviewed_by)} ${app.review_reason ? html`· ${T("理由")}${T("：")}${app.review_reason}` : ""}</div>` : ""}
    </div>
    <h4>${T("逐项结果")}</h4>${outcomeSummary(app)}${decisionsTable(app, t)}
    <div class="row" style="margin-top:8px">
      ${app.grant_id ? html`<button data-act="goto-grant" data-id="${app.grant_id}">${T("查看授权 #{id}", {id: app.grant_id})}</button>` : ""}
      ${app.dispute_id ? html`<button data-act="goto-dispute" data-id="${app.dispute_id}">${T("查看争议 #{id}", {id: app.dispute_id})}</button>` : ""}
    </div>
    ${reviewForms}${disputeForm}
    <h4>${T("办理记录")}</h4><ul class="timeline" id="app-events">${events}</ul></div>`);
}

export async function submitApprove(form) {
  const f = form.elements;
  const app = await api("application", {p: {app_id: form.dataset.id}});
  const pending = app.decisions.filter((d) => d.outcome === "pending").map((d) => d.field);
  const items = [...form.querySelectorAll('input[name="items"]:checked')].map((x) => x.value);
  const body = {};
  if (items.length !== pending.length) body.items = items;
  if (f.valid_until.value && f.valid_until.value !== app.valid_until) body.valid_until = f.valid_until.value;
  if (f.quota.value && Number(f.quota.value) !== app.daily_quota) body.daily_quota = Number(f.quota.value);
  if (f.reason.value.trim()) body.reason = f.reason.value.trim();
  const out = await api("approve", {p: {app_id: form.dataset.id}, json: body});
  await afterReview(form.dataset.id, form.dataset.pane);
  notice(html`${T("申请 #{id} 已审核：", {id: out.id})}${tag("app_status", out.status)}`);
}
export async function submitReject(form) {
  const reason = form.elements.reason.value.trim();
  if (!reason) { showError(new Error(T("退回必须说明理由"))); return; }
  const out = await api("reject", {p: {app_id: form.dataset.id}, json: {reason}});
  await afterReview(form.dataset.id, form.dataset.pane);
  notice(html`${T("申请 #{id} 已退回：", {id: out.id})}${tag("app_status", out.status)}`);
}
async function afterReview(id, pane) {
  await loadApps(pane === "apps" ? "consumer" : "provider");
  await openApp(id, pane);
  refreshBadges();
}
export async function submitDispute(form) {
  const items = [...form.querySelectorAll('input[name="items"]:checked')].map((x) => x.value);
  // The page opens the new dispute (portal.js): navigation is the page's.
  return api("dispute", {p: {app_id: form.dataset.id}, json: {reason: form.elements.reason.value.trim(), items}});
}
