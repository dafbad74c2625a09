// 数据交换: a lookup through the broker under the caller's grants, with sample keys taken
// through the broker's export, and what came back (only granted items).
import {$, html, put, table, T} from "/ui.js";
import {S, api, rc, errorBlock, Stale, topicOf, itemName, valueText, notice} from "/core.js";

export async function loadExchange(topic) {
  const me = S.me || {};
  if (me.operator) {
    put("exchange-form", html`<p class="muted">${T("数据交换以申请单位的身份进行：请在“身份”中切换到持有授权的部门（运营方可在“审计日志”中查看全部交换）。")}</p>`);
    put("exchange-result", "");
    return;
  }
  const grants = (await api("grants", {q: {consumer: me.code, limit: 500}})).items;
  const active = grants.filter((g) => g.status === "active");
  const chosen = topic || ($("x-topic") && $("x-topic").value) || (active[0] && active[0].topic) || "";
  put("exchange-form", html`<div class="card form"><form data-form="query"><div class="grid">
      <label for="x-topic">${T("主题")}</label><div><select name="topic" id="x-topic">
        ${active.map((g) => html`<option value="${g.topic}" ${g.topic === chosen ? "selected" : ""}>${g.topic} · ${T("授权 #{id}", {id: g.id})}</option>`)}
        ${chosen && !active.some((g) => g.topic === chosen) ? html`<option value="${chosen}" selected>${chosen}${T("（无有效授权）")}</option>` : ""}
      </select> <span class="muted small">${active.length ? "" : T("本单位暂无有效授权：先在“目录检索”中申请。")}</span></div>
      <span id="x-items-l">${T("信息项")}</span><div id="x-items" class="items" role="group" aria-labelledby="x-items-l"></div>
      <label class="req" for="x-keys">${T("查询键")}</label><div><textarea id="x-keys" name="keys" rows="4" cols="60" placeholder="${T("每行一个键（身份证号 / 统一社会信用代码 …），最多 1000 个")}"></textarea>
        <br><button type="button" data-act="sample-keys">${T("取样本键")}</button> <span class="muted small">${T("（通过 broker export 取 3 条记录的键；计入限额与审计）")}</span></div>
      <label for="x-case">${T("业务事项")}</label><input id="x-case" name="case" size="40" placeholder="${T("如：低保审核 2026-0001")}">
      <span></span><div><button class="primary">${T("查询")} <span class="en">POST /api/v1/exchange/…/query</span></button></div>
    </div></form></div>`);
  put("exchange-result", "");
  if (chosen) await renderExchangeItems(chosen, grants);
}

export async function renderExchangeItems(code, grants) {
  const t = await topicOf(code);
  const g = (grants || (await api("grants", {q: {consumer: S.me.code, topic: code}})).items).find((x) => x.topic === code && x.status === "active");
  const granted = new Set(g ? g.items : []);
  put("x-items", html`${t.items.map((i) => html`<label title="${granted.has(i.field) ? T("已授权") : T("未授权：勾选将被拒绝")}"><input type="checkbox" name="items" value="${i.field}"> ${i.name} <code>${i.field}</code>
      ${granted.has(i.field) ? html`<span class="tag granted">${T("已授权")}</span>` : html`<span class="tag not_shared">${T("未授权")}</span>`}</label>`)}
    <div class="small muted">${T("不勾选 = 全部已授权信息项；响应只含已授权的信息项，无论提供方返回什么。")}</div>`);
}

export async function sampleKeys() {
  const code = $("x-topic").value;
  const t = await topicOf(code);
  const k = t.items.find((i) => i.is_key);
  const out = await api("export", {p: rc(code), q: {limit: 3, items: k ? k.field : ""}, text: true});
  const keys = out.text.split("\n").filter(Boolean).map((line) => JSON.parse(line)).map((r) => (k ? r[k.field] : Object.values(r)[0]));
  // For ID-number topics, add one malformed number so the answer shows the provider's `invalid` list.
  const bad = k && k.field === "id_number" ? ["440100190001010000"] : [];
  $("x-keys").value = keys.concat(bad).join("\n");
  notice(html`${T("已取 {n} 个样本键", {n: keys.length})}（export <code>${out.headers.get("x-request-id") || ""}</code>）${bad.length ? T("，另加 1 个校验位错误的身份证号以演示 invalid") : ""}。`);
}

export async function submitQuery(form) {
  const f = form.elements;
  const code = f.topic.value;
  const keys = f.keys.value.split(/[\s,，]+/).filter(Boolean);
  const items = [...form.querySelectorAll('input[name="items"]:checked')].map((x) => x.value);
  const body = {keys};
  if (items.length) body.items = items;
  // Header values must be ISO-8859-1: a Chinese case name travels percent-encoded.
  const caseName = f.case.value.trim();
  const headers = caseName ? {"X-Exchange-Case": /^[\x20-\x7e]*$/.test(caseName) ? caseName : encodeURIComponent(caseName)} : {};
  const t = await topicOf(code);
  let r;
  try {
    r = await api("query", {p: rc(code), json: body, headers});
  } catch (e) {
    if (e instanceof Stale) throw e;
    put("exchange-result", html`<div class="card" id="exchange-denied"><h3>${T("交换被拒绝或失败")}</h3><div class="err">${errorBlock(e)}</div>
      ${e.requestId ? html`<button data-act="goto-audit" data-rid="${e.requestId}">${T("在审计日志中查看此请求")}</button>` : ""}</div>`);
    return;
  }
  const cols = [...new Set(r.records.flatMap((rec) => Object.keys(rec)))];
  const notReturned = t.items.filter((i) => !cols.includes(i.field));
  const cell = (v) => (typeof v === "object" && v !== null ? valueText(v) : v);
  put("exchange-result", html`<div class="card" id="exchange-ok"><h3>${T("交换结果")} · ${T("请求编号")} <code id="x-rid">${r.request_id}</code>
      <button data-act="goto-audit" data-rid="${r.request_id}">${T("在审计日志中查看")}</button></h3>
    <p>${T("返回 {n} 条记录 · 未找到 {nf} · 格式错误 {iv}", {n: r.records.length, nf: r.not_found.length, iv: (r.invalid || []).length})}</p>
    <p class="small">${T("返回的信息项")}${T("：")}${cols.map((c) => html`<code>${c}</code> `)}<br>
      <span class="muted">${T("未返回（未授权或未请求）")}${T("：")}${notReturned.map((i) => html`<code>${i.field}</code> `)}</span></p>
    <div class="scroll">${table(cols.map((c) => html`<th scope="col">${itemName(t, c)}<br><code>${c}</code></th>`), r.records.map((rec) => html`<tr>${cols.map((c) => html`<td>${cell(rec[c])}</td>`)}</tr>`), T("无"))}</div>
    ${r.not_found.length ? html`<p>${T("未找到")} <span class="en">not_found</span>：${r.not_found.map((k) => html`<code>${k}</code> `)}</p>` : ""}
    ${(r.invalid || []).length ? html`<p>${T("格式错误")} <span class="en">invalid</span>：${r.invalid.map((x) => html`<code>${x.key}</code> ${x.code} ${x.message}；`)}</p>` : ""}
  </div>`);
}
