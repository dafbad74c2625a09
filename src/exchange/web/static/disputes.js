// 争议协调: disputes both sides see, the negotiation thread, and the operator's decision.
import {$, html, put, tag, table, fmtTime, T, codeText} from "/ui.js";
import {codesOf} from "/glossary.js";
import {S, api, dept, showError, notice, newest} from "/core.js";

const decisionTag = (d) => tag("decision", d, d === "uphold" ? "refused" : "granted");

export async function loadDisputes() {
  const current = newest("disputes-list");
  const roles = S.me && S.me.operator ? ["consumer"] : ["consumer", "provider"];
  const pages = await Promise.all(roles.map((r) => api("applications", {q: {role: r, limit: 500}})));
  const ids = [...new Set(pages.flatMap((p) => p.items).filter((a) => a.dispute_id).map((a) => a.dispute_id))].sort((a, b) => b - a);
  const disputes = await Promise.all(ids.slice(0, 60).map((id) => api("disputeGet", {p: {dispute_id: id}})));
  if (!current()) return;
  const rows = disputes.map((d) => html`<tr class="click" tabindex="0" data-act="open-dispute" data-id="${d.id}"><td>#${d.id}</td><td>#${d.application_id}</td>
      <td>${dept(d.consumer)}</td><td>${dept(d.provider)}</td><td>${d.items.map((i) => html`<code>${i}</code> `)}</td>
      <td>${tag("dispute_status", d.status)}</td><td class="nowrap">${fmtTime(d.opened_at)}</td><td>${d.decision ? decisionTag(d.decision) : ""}</td></tr>`);
  put("disputes-list", html`<div class="row"><button data-act="reload-disputes">${T("刷新")}</button>
      <form data-form="open-dispute" class="row" style="margin:0"><label for="dispute-no" class="sr-only">${T("争议编号")}</label><input id="dispute-no" name="id" type="number" min="1" placeholder="${T("争议编号")}" style="width:100px"><button>${T("打开")}</button></form></div>
    ${table([T("争议"), T("申请"), T("申请单位"), T("提供单位"), T("争议信息项"), T("状态"), T("提起时间"), T("协调决定")], rows, T("暂无争议。申请单位可在被拒绝或退回的申请详情中提起争议。"))}`);
}

export async function openDispute(id) {
  const current = newest("dispute-detail");
  const d = await api("disputeGet", {p: {dispute_id: id}});
  if (!current()) return;
  const me = S.me || {};
  for (const tr of $("disputes-list").querySelectorAll("tr[data-id]")) tr.classList.toggle("sel", tr.dataset.id === String(id));
  const open = d.status === "open";
  const thread = d.messages.map((m) => html`<div class="msg ${m.author === me.code ? "mine" : ""} ${m.author === "operator" ? "op" : ""}">
    <div class="small muted">${dept(m.author)} · ${fmtTime(m.at)}</div><div>${m.body}</div></div>`);
  put("dispute-detail", html`<div class="card"><h3>${T("争议 #{id}", {id: d.id})} · ${T("申请 #{id}", {id: d.application_id})} ${tag("dispute_status", d.status)}</h3>
    <div class="grid">
      <span>${T("双方")}</span><div>${dept(d.consumer)}${T("（申请）")} ↔ ${dept(d.provider)}${T("（提供）")}</div>
      <span>${T("争议信息项")}</span><div>${d.items.map((i) => html`<code>${i}</code> `)}</div>
      <span>${T("提起理由")}</span><div>${d.reason}</div>
      <span>${T("提起时间")}</span><div>${fmtTime(d.opened_at)}</div>
      ${d.decision ? html`<span>${T("协调决定")}</span><div id="dispute-decision">${decisionTag(d.decision)}
        ${d.decided_items ? html` ${T("授权信息项")}${T("：")}${d.decided_items.map((i) => html`<code>${i}</code> `)}` : ""} · ${dept(d.decided_by)} · ${fmtTime(d.decided_at)}<br>${T("理由")}${T("：")}${d.decision_reason}</div>` : ""}
    </div>
    <div class="row" style="margin-top:8px"><button data-act="goto-app" data-id="${d.application_id}" data-pane="${me.code === d.provider ? "review" : "apps"}">${T("申请 #{id}", {id: d.application_id})}</button></div>
    <h4>${T("协商记录")}</h4>${thread.length ? thread : html`<p class="muted">${T("暂无消息。")}</p>`}
    ${open ? html`<form data-form="message" data-id="${d.id}" class="row"><label for="msg-body" class="sr-only">${T("发送")}</label><input id="msg-body" name="body" size="70" required placeholder="${T("发送协商消息（双方与运营方可见）")}"><button class="primary">${T("发送")}</button></form>` : ""}
    ${open && me.operator ? html`<div class="card form"><h4>${T("运营方协调决定")} <span class="en">POST …/decide</span></h4>
      <form data-form="decide" data-id="${d.id}"><div class="grid">
        <span id="dc-l">${T("决定")}</span><div role="radiogroup" aria-labelledby="dc-l">${codesOf("decision").map((k, i) => html`<label><input type="radio" name="decision" value="${k}" ${i === 0 ? "checked" : ""}> ${codeText("decision", k)}</label> `)}</div>
        <span id="dc-items-l">${T("部分授权的信息项")}</span><div class="items" role="group" aria-labelledby="dc-items-l">${d.items.map((i) => html`<label><input type="checkbox" name="items" value="${i}"> <code>${i}</code></label>`)} <span class="small muted">${T("（仅部分授权）")}</span></div>
        <label class="req" for="dc-reason">${T("理由")}</label><textarea id="dc-reason" name="reason" rows="2" cols="50" required></textarea>
        <span></span><div><button class="primary">${T("作出决定")}</button></div></div></form></div>` : ""}
    ${open && !me.operator ? html`<p class="muted small">${T("协商不成的，由平台运营方（主管部门）协调决定：切换到运营方身份即可作出决定。")}</p>` : ""}
  </div>`);
}

export async function submitMessage(form) {
  await api("message", {p: {dispute_id: form.dataset.id}, json: {body: form.elements.body.value}});
  await openDispute(form.dataset.id);
}
export async function submitDecide(form) {
  const f = form.elements;
  const decision = form.querySelector('input[name="decision"]:checked').value;
  const body = {decision, reason: f.reason.value.trim()};
  if (!body.reason) { showError(new Error(T("协调决定必须说明理由"))); return; }
  if (decision === "partial") body.items = [...form.querySelectorAll('input[name="items"]:checked')].map((x) => x.value);
  const d = await api("decide", {p: {dispute_id: form.dataset.id}, json: body});
  await loadDisputes();
  await openDispute(d.id);
  notice(html`${T("争议 #{id} 已决定：", {id: d.id})}${decisionTag(d.decision)}`);
}
