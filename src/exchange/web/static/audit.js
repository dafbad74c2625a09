// 审计日志: today's volume, the hash-chained entries page by page, and the chain's check.
import {$, html, put, table, fmtTime, fmtNum, T, codeText} from "/ui.js";
import {S, api, dept, notice, newest} from "/core.js";

export function auditFilter() {
  return html`<input id="au-consumer" aria-label="${T("申请单位代码")}" placeholder="${T("申请单位代码")}" size="10"><input id="au-provider" aria-label="${T("提供单位代码")}" placeholder="${T("提供单位代码")}" size="10">
    <input id="au-topic" aria-label="${T("资源代码")}" placeholder="${T("资源代码")}" size="18"><input id="au-rid" aria-label="${T("请求编号")}" placeholder="request id" size="34">
    <input id="au-outcome" aria-label="${T("结果（ok / client.…）")}" placeholder="${T("结果（ok / client.…）")}" size="20">
    <button data-act="audit-search">${T("查询")}</button><button data-act="audit-next">${T("下一页")}</button>`;
}

export async function loadAudit() {
  S.auditAfter = 0;
  await Promise.all([loadStats(), loadEntries()]);
  const me = S.me || {};
  // Rendered once per identity: a reload of the tab must not wipe a verification shown.
  if ($("verify-result")) return;
  put("audit-verify", html`<div class="row"><button data-act="verify" ${me.operator ? "" : "disabled"}>${T("校验哈希链")} <span class="en">GET /api/v1/audit/verify</span></button>
    ${me.operator ? "" : html`<span class="muted small">${T("仅运营方可校验")}</span>`}<span id="verify-result" role="status"></span></div>`);
}

function volumeTable(title, by, nameOf) {
  const rows = Object.entries(by).sort((a, b) => b[1].records - a[1].records)
    .map(([k, v]) => html`<tr><td>${nameOf(k)}</td><td class="num">${fmtNum(v.calls)}</td><td class="num">${fmtNum(v.records)}</td></tr>`);
  return html`<div><h4>${title}</h4>${table([html`<th scope="col"></th>`, html`<th scope="col" class="num">${T("调用")}</th>`, html`<th scope="col" class="num">${T("记录")}</th>`], rows, T("无"))}</div>`;
}
async function loadStats() {
  const current = newest("audit-stats");
  const s = await api("auditStats");
  if (!current()) return;
  const topic = (k) => html`<code>${k}</code>`;
  put("audit-stats", html`<div class="card"><h3>${T("今日交换量")} <span class="en">${s.day}</span></h3>
    <span class="stat">${T("今日调用")}<b>${fmtNum(s.today.calls)}</b></span><span class="stat">${T("今日交换记录")}<b>${fmtNum(s.today.records)}</b></span>
    <span class="stat">${T("累计调用")}<b>${fmtNum(s.total.calls)}</b></span><span class="stat">${T("累计记录")}<b>${fmtNum(s.total.records)}</b></span>
    <div class="cols">${volumeTable(T("按提供单位"), s.today.by_provider, dept)}${volumeTable(T("按申请单位"), s.today.by_consumer, dept)}${volumeTable(T("按主题"), s.today.by_topic, topic)}</div></div>`);
}
export async function loadEntries() {
  const current = newest("audit-list");
  const p = new URLSearchParams({after: S.auditAfter, limit: 50});
  for (const [id, name] of [["au-consumer", "consumer"], ["au-provider", "provider"], ["au-topic", "resource_code"], ["au-rid", "request_id"], ["au-outcome", "outcome"]]) {
    if ($(id).value.trim()) p.set(name, $(id).value.trim());
  }
  const page = await api("auditEntries", {q: p});
  if (!current()) return;
  S.auditNext = page.next_after;
  const rows = page.entries.map((e) => html`<tr data-rid="${e.request_id}"><td>${e.seq}</td><td class="nowrap">${fmtTime(e.at)}</td><td><code>${e.request_id}</code></td><td>${codeText("audit_kind", e.kind)}</td>
      <td>${dept(e.consumer)}</td><td>${e.provider ? dept(e.provider) : ""}</td><td><code>${e.resource_code || ""}</code></td>
      <td class="small">${e.items.join(", ")}</td><td>${caseText(e.case)}</td><td class="num">${e.records}</td>
      <td><span class="tag ${e.outcome === "ok" ? "ok" : "bad"}" title="${e.outcome}">${codeText("error", e.outcome)}</span> <code class="small">${e.outcome === "ok" ? e.status : e.outcome}</code></td>
      <td class="num">${e.latency_ms.toFixed(1)} ms</td><td><code title="${e.hash}">${e.hash.slice(0, 10)}…</code></td></tr>`);
  put("audit-list", html`<p class="muted small">${T("按哈希链顺序（seq）")}；${S.auditAfter ? T("从 seq {s} 之后", {s: S.auditAfter}) : T("从头")}，${T("{n} 条", {n: page.entries.length})}${page.next_after ? `，${T("还有更多")}` : ""}。</p>
    ${table(["seq", T("时间"), T("请求编号"), T("类型"), T("申请单位"), T("提供单位"), T("主题"), T("信息项"), T("业务事项"), html`<th scope="col" class="num">${T("记录")}</th>`, T("结果"), html`<th scope="col" class="num">${T("耗时")}</th>`, "hash"], rows, T("暂无审计记录：在“数据交换”中做一次查询。"), 'id="audit-table"')}`);
}
// Next page of entries, or a notice that this was the last.
export function nextEntries() {
  if (!S.auditNext) { notice(T("已是最后一页。")); return null; }
  S.auditAfter = S.auditNext;
  return loadEntries();
}
function caseText(c) {
  if (!c) return "";
  try { return decodeURIComponent(c); } catch (e) { return c; }
}
export async function verifyChain() {
  const r = await api("auditVerify");
  put("verify-result", r.ok
    ? html`<span class="tag ok">${T("完整")}</span> ${T("共 {n} 条，最后 seq {s}", {n: r.entries, s: r.last_seq})}`
    : html`<span class="tag bad">${T("异常")} ${r.problem}</span> ${T("第一个问题 seq {s}：{m}", {s: r.first_bad_seq, m: r.message})}`);
}
