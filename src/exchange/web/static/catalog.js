// 目录检索: keyword search over the catalog, a topic's card with its history, and the
// application form (共享申请) under it.
import {$, html, put, tag, table, fmtTime, addDays, T, codeText} from "/ui.js";
import {codesOf} from "/glossary.js";
import {S, api, rc, dept, notice, topicOf, changesText, refreshBadges, platformToday, newest} from "/core.js";
import {outcomeSummary, decisionsTable} from "/applications.js";

let offset = 0; const limit = 20;
// Paging: a new search starts at the first page, prev/next move by a page.
export function searchFrom(where) {
  offset = where === "first" ? 0 : Math.max(0, offset + (where === "next" ? limit : -limit));
  return search();
}

export async function search() {
  const current = newest("results");
  // A new search is about new topics: the one opened before goes, now rather than when the
  // answer comes (a card opened meanwhile, from the rows still shown, stays), and so does
  // one still being fetched.
  newest("detail");
  put("detail", "");
  const p = new URLSearchParams({offset, limit, status: $("status").value});
  for (const [id, name] of [["q", "q"], ["category", "category"], ["sharing", "sharing_type"], ["provider", "provider"]]) {
    if ($(id).value.trim()) p.set(name, $(id).value.trim());
  }
  const page = await api("topics", {q: p});
  if (!current()) return;
  $("total").textContent = page.total ? T("共 {n} 条，第 {a}–{b} 条", {n: page.total, a: offset + 1, b: Math.min(offset + limit, page.total)}) : T("共 0 条");
  put("results", page.items.map((t) => html`<tr class="click" tabindex="0" data-act="topic" data-code="${t.resource_code}">
    <td><code>${t.resource_code}</code></td><td>${t.name}</td><td>${dept(t.provider)}</td><td>${codeText("group", t.group)}</td>
    <td>${tag("sharing", t.sharing.type)}</td><td>${codeText("resource_type", t.resource_type)}</td><td>${tag("topic_status", t.status)}</td></tr>`));
}

export async function detail(code) {
  const current = newest("detail");
  const t = await api("topic", {p: rc(code)});
  S.topics[code] = t;
  if (!current()) return;
  for (const tr of $("results").children) tr.classList.toggle("sel", tr.dataset.code === code);
  const items = t.items.map((i) => html`<tr><td><code>${i.field}</code>${i.is_key ? html` <span class="tag published">${T("键")}</span>` : ""}</td><td>${i.name}</td><td>${i.data_type}</td>
    <td>${tag("sharing", i.sharing_type)}</td><td>${i.element || ""}${i.element ? ` (${T(i.is_source ? "源" : "转共享")})` : ""}</td></tr>`);
  const hist = (t.history || []).map((h) => html`<li>v${h.version} · ${fmtTime(h.changed_at)} · ${dept(h.changed_by)} · ${codeText("change_kind", h.reason)} · ${changesText(h.changes)}</li>`);
  const scopes = (t.sharing.usage_scopes || []).map((s) => codeText("scope", s)).join(T("、"));
  const methods = (t.sharing.methods || []).map((m) => codeText("method", m)).join(T("、"));
  put("detail", html`<div class="card" id="topic-card" data-code="${t.resource_code}"><h3>${t.name} ${tag("topic_status", t.status)}</h3>
    <p><code>${t.resource_code}</code> · ${dept(t.provider)} · ${T("分组")}${T("：")}${codeText("group", t.group)} · ${T("分类")}${T("：")}${codeText("classification", t.classification)} · ${codeText("resource_type", t.resource_type)} · ${t.format} · ${T("更新周期")} ${codeText("update_cycle", t.update_cycle)} · ${T("版本")} v${t.version}</p>
    <p>${t.abstract}</p>
    <p>${T("共享")}${T("：")}${tag("sharing", t.sharing.type)} ${t.sharing.conditions || ""} ${t.sharing.legal_basis ? html`<b>${T("法律依据")}${T("：")}</b>${t.sharing.legal_basis}` : ""}</p>
    <p class="small muted">${T("使用范围")}${T("：")}<span id="topic-scopes">${scopes || "—"}</span> · ${T("共享方式")}${T("：")}${methods || "—"}</p>
    ${t.retire_reason ? html`<p class="err">${T("废置原因")}${T("：")}${t.retire_reason}</p>` : ""}
    ${table([T("字段"), T("信息项"), T("类型"), T("共享类型"), T("数据元")], items, T("无"))}
    <h4>${T("版本历史")}</h4><ul class="timeline" id="topic-history">${hist}</ul>
    <div id="topic-actions" data-code="${t.resource_code}"></div><div id="topic-hook"></div></div>`);
  renderApplyForm(t, $("topic-actions"));
  if (window.EXCHANGE_TOPIC_ACTIONS) window.EXCHANGE_TOPIC_ACTIONS(t, $("topic-hook"));
}

function renderApplyForm(t, el) {
  if (t.status !== "published" || !S.me) { put(el, ""); return; }
  if (!S.me.operator && S.me.code === t.provider) {
    put(el, html`<p class="muted">${T("这是本单位提供的资源，无需申请。")}</p>`);
    return;
  }
  const allowed = new Set(t.sharing.usage_scopes || []);
  const scopes = codesOf("scope").map((s) => html`<option value="${s}" ${s === (t.sharing.usage_scopes || [])[0] ? "selected" : ""}>${codeText("scope", s)}${allowed.has(s) ? ` ✓ ${T("目录允许")}` : ""}</option>`);
  const units = Object.values(S.depts).filter((d) => d.code !== t.provider).sort((a, b) => a.code.localeCompare(b.code));
  put(el, html`<div class="card form"><h3>${T("申请共享")} <span class="en">POST /api/v1/applications</span></h3>
    <form data-form="apply" data-code="${t.resource_code}"><div class="grid">
      ${S.me.operator ? html`<label class="req" for="ap-consumer">${T("代为申请单位")}</label><select id="ap-consumer" name="consumer" required><option value="">—</option>${units.map((d) => html`<option value="${d.code}">${d.short_name || d.name} (${d.code})</option>`)}</select>` : ""}
      <span class="req" id="ap-items-l">${T("信息项")}</span><div class="items" role="group" aria-labelledby="ap-items-l">${t.items.map((i) => html`<label><input type="checkbox" name="items" value="${i.field}" checked> ${i.name} <code>${i.field}</code> ${tag("sharing", i.sharing_type)}</label>`)}</div>
      <label class="req" for="ap-scope">${T("使用范围（用途）")}</label><select id="ap-scope" name="scope">${scopes}</select>
      <label class="req" for="ap-purpose">${T("用途说明")}</label><input id="ap-purpose" name="purpose" required size="60" value="${T("居民家庭经济状况核对（最低生活保障审核）")}">
      <label class="req" for="ap-legal">${T("履职依据")}</label><input id="ap-legal" name="legal" required size="60" value="${T("《社会救助暂行办法》第十一条")}">
      <label for="ap-from">${T("有效期")}</label><div><input type="date" id="ap-from" name="valid_from" title="${T("留空为今天（平台时间）")}" aria-label="${T("有效期")} (from)"> ${T("至")} <input type="date" name="valid_until" required aria-label="${T("有效期至")}" value="${addDays(platformToday(), 365)}"></div>
      <label for="ap-quota">${T("每日限额")}</label><div><input type="number" id="ap-quota" name="quota" min="1" value="1000" size="10"> <span class="muted small">${T("条/天，留空为不限")}</span></div>
      <label for="ap-delivery">${T("交付方式")}</label><select id="ap-delivery" name="delivery">${codesOf("delivery").map((d) => html`<option value="${d}">${codeText("delivery", d)}</option>`)}</select>
      <span></span><div><button class="primary">${T("提交申请")}</button></div>
    </div></form><div id="apply-result"></div></div>`);
}

export async function submitApply(form) {
  const f = form.elements;
  const items = [...form.querySelectorAll('input[name="items"]:checked')].map((x) => x.value);
  const body = {topic: form.dataset.code, items, purpose: {scope: f.scope.value, text: f.purpose.value},
    legal_function: f.legal.value, valid_until: f.valid_until.value, delivery: f.delivery.value};
  if (f.valid_from.value) body.valid_from = f.valid_from.value;
  if (f.quota.value) body.daily_quota = Number(f.quota.value);
  if (f.consumer) body.consumer = f.consumer.value;
  const app = await api("apply", {json: body});
  const t = await topicOf(app.topic);
  put("apply-result", html`<div class="card"><h3>${T("申请 #{id} 已提交", {id: app.id})} ${tag("app_status", app.status)}</h3>
    ${outcomeSummary(app)}${decisionsTable(app, t)}
    <div class="row"><button data-act="goto-app" data-id="${app.id}" data-pane="apps">${T("在“我的申请”中查看")}</button>
    ${app.grant_id ? html`<button data-act="goto-grant" data-id="${app.grant_id}">${T("查看授权 #{id}", {id: app.grant_id})}</button>` : ""}</div></div>`);
  notice(T("申请 #{id} 已提交。", {id: app.id}));
  refreshBadges();
}
