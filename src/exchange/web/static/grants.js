// 授权管理: grants held or given, a grant's detail with its revocation, and the
// authorization check (授权校验).
import {$, html, put, tag, label, table, fmtTime, T, codeText} from "/ui.js";
import {codesOf} from "/glossary.js";
import {S, api, dept, itemName, topicOf, showError, notice, newest} from "/core.js";

export function grantsFilter() {
  return html`<label for="grants-status" class="sr-only">${T("状态")}</label><select id="grants-status"><option value="">${T("全部状态")}</option>${codesOf("grant_status").map((s) => html`<option value="${s}">${codeText("grant_status", s)}</option>`)}</select>
    <input id="grants-consumer" aria-label="${T("申请单位代码")}" placeholder="${T("申请单位代码")}" size="14"><input id="grants-provider" aria-label="${T("提供单位代码")}" placeholder="${T("提供单位代码")}" size="14">
    <input id="grants-topic" aria-label="${T("资源代码")}" placeholder="${T("资源代码")}" size="18"><button data-act="reload-grants">${T("刷新")}</button>`;
}

// A grant's status text: the retirement the exchange wrote in English is worded here.
function statusReason(s) {
  if (!s) return "";
  const m = /^topic retired:?\s*(.*)$/.exec(s);
  if (m) return codeText("reason", "topic_retired") + (m[1] ? `：${m[1]}` : "");
  if (s === "the catalog removed every item of the grant") return codeText("reason", "removed_from_catalog");
  return s;
}

export async function loadGrants() {
  const current = newest("grants-list");
  const p = new URLSearchParams({limit: 200});
  for (const [id, name] of [["grants-status", "status"], ["grants-consumer", "consumer"], ["grants-provider", "provider"], ["grants-topic", "topic"]]) {
    if ($(id).value.trim()) p.set(name, $(id).value.trim());
  }
  const page = await api("grants", {q: p});
  if (!current()) return;
  const rows = page.items.map((g) => html`<tr class="click" tabindex="0" data-act="open-grant" data-id="${g.id}"><td>#${g.id}</td><td>${dept(g.consumer)}</td><td>${dept(g.provider)}</td>
      <td><code>${g.topic}</code></td><td>${T("{n} 项", {n: g.items.length})}</td><td class="nowrap">${g.valid_from} ${T("至")} ${g.valid_until}</td>
      <td class="num">${g.daily_quota || T("不限")}</td><td>${tag("grant_status", g.status)}${g.status_reason ? html`<br><span class="small">${statusReason(g.status_reason)}</span>` : ""}</td><td class="nowrap">${fmtTime(g.updated_at)}</td></tr>`);
  put("grants-list", html`<p class="muted small">${T("共 {n} 项；“已过期”指有效期最后一天已过（按平台时钟）。", {n: page.total})}</p>
    ${table([T("授权"), T("申请单位"), T("提供单位"), T("主题"), T("信息项"), T("有效期"), T("每日限额"), T("状态"), T("更新")], rows, T("暂无授权。"))}`);
  renderCheck();
}

export async function openGrant(id) {
  const current = newest("grant-detail");
  const g = await api("grant", {p: {grant_id: id}});
  const t = await topicOf(g.topic).catch(() => null);
  if (!current()) return;
  const me = S.me || {};
  for (const tr of $("grants-list").querySelectorAll("tr[data-id]")) tr.classList.toggle("sel", tr.dataset.id === String(id));
  const canRevoke = (me.operator || me.code === g.provider) && (g.status === "active" || g.status === "suspended");
  put("grant-detail", html`<div class="card"><h3>${T("授权 #{id}", {id: g.id})} · ${t ? t.name : ""} <code>${g.topic}</code> ${tag("grant_status", g.status)}</h3>
    <div class="grid">
      <span>${T("申请单位 → 提供单位")}</span><div>${dept(g.consumer)} → ${dept(g.provider)}</div>
      <span>${T("授权信息项")}</span><div>${g.items.map((i) => html`<code>${i}</code> ${itemName(t, i)}　`)}</div>
      <span>${T("用途 · 依据")}</span><div>${label("scope", g.purpose.scope)} · ${g.purpose.text} · ${g.legal_function}</div>
      <span>${T("有效期 · 限额")}</span><div>${g.valid_from} ${T("至")} ${g.valid_until} · ${g.daily_quota ? html`${g.daily_quota} ${T("条/天")}` : T("不限")} · ${codeText("delivery", g.delivery)}</div>
      ${g.status_reason ? html`<span>${T("状态说明")}</span><div>${statusReason(g.status_reason)}</div>` : ""}
      <span>${T("创建 · 更新")}</span><div>${fmtTime(g.created_at)} · ${fmtTime(g.updated_at)}</div>
    </div>
    <div class="row" style="margin-top:8px">
      ${me.code === g.consumer && g.status === "active" ? html`<button class="primary" data-act="goto-exchange" data-topic="${g.topic}">${T("用此授权交换查询")}</button>` : ""}
      <button data-act="goto-audit" data-topic="${g.topic}" data-consumer="${g.consumer}">${T("查看相关审计")}</button>
    </div>
    ${canRevoke ? html`<form data-form="revoke" data-id="${g.id}" class="row"><label class="req" for="rv-why">${T("撤销理由")}</label><input id="rv-why" name="reason" size="50" required placeholder="${T("如：用途已终止 / 发现超范围使用")}"><button class="danger">${T("撤销授权")}</button></form>` : ""}
  </div>`);
}

export async function submitRevoke(form) {
  const reason = form.elements.reason.value.trim();
  if (!reason) { showError(new Error(T("撤销必须说明理由"))); return; }
  const g = await api("revoke", {p: {grant_id: form.dataset.id}, json: {reason}});
  await loadGrants();
  await openGrant(g.id);
  notice(T("授权 #{id} 已撤销：此后的校验与交换返回 grant_revoked。", {id: g.id}));
}

function renderCheck() {
  const me = S.me || {};
  put("check-box", html`<div class="card form"><h4>${T("授权校验")} <span class="en">POST /api/v1/authz/check</span></h4>
    <form data-form="check" class="row">
      <input name="consumer" size="12" aria-label="${T("申请单位代码")}" placeholder="consumer" value="${me.operator ? "" : me.code || ""}" required>
      <input name="topic" size="20" aria-label="${T("资源代码")}" placeholder="101001001/000001" required>
      <input name="items" size="30" aria-label="${T("信息项")}" placeholder="${T("信息项，逗号分隔（空 = 全部已授权项）")}">
      <input name="records" type="number" min="0" value="1" style="width:80px" aria-label="${T("记录数")}" title="${T("记录数")}">
      <button>${T("校验")}</button></form><div id="check-result"></div></div>`);
}
export async function submitCheck(form) {
  const f = form.elements;
  const body = {consumer: f.consumer.value.trim(), topic: f.topic.value.trim(), records: Number(f.records.value || 1)};
  const items = f.items.value.split(/[,，\s]+/).filter(Boolean);
  if (items.length) body.items = items;
  const r = await api("check", {json: body});
  put("check-result", html`<p>${r.allowed ? html`<span class="tag ok">${T("允许")}</span>` : html`<span class="tag bad">${T("拒绝")}</span>`}
    ${T("原因")} ${codeText("check", r.reason)} <code>${r.reason}</code> · ${T("授权")} ${r.grant_id ? html`#${r.grant_id}` : "—"} · ${T("信息项")} ${r.items.map((i) => html`<code>${i}</code> `)}
    · ${T("今日剩余额度")} ${r.remaining_quota === null ? T("不限") : r.remaining_quota}</p>`);
}
