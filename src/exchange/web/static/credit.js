// 信用双公示: the public search of published permits and penalties (ID numbers masked, as
// GET /api/v1/credit/records serves them), the publication rate per unit (GET
// /api/v1/credit/stats) and, for units holding a grant on the credit lists topic (the
// customs, the commerce bureau), a red and black list check with reasons and records.
import {html, put, table, fmtNum, T} from "/ui.js";
import {api, deptName, newest} from "/core.js";

const LISTS = {black: "黑名单（失信联合惩戒）", red: "红名单（守信联合激励）"};
const KINDS = {permit: "行政许可", penalty: "行政处罚"};
const CODE = /^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$/;

export function renderCreditForms() {
  put("credit-form", html`<form data-form="credit-search" class="row">
    <label for="credit-q" class="sr-only">${T("统一社会信用代码或名称")}</label>
    <input id="credit-q" name="q" required maxlength="100" size="30" placeholder="${T("统一社会信用代码或名称")}">
    <button class="primary" type="submit">${T("检索")}</button>
    <button type="button" data-act="credit-lists">${T("红黑名单核查")}</button></form>`);
}

export async function searchCredit(form) {
  const q = form.elements.q.value.trim();
  const current = newest("credit-result");
  const page = await api("creditRecords", {q: CODE.test(q) ? {credit_code: q} : {name: q}});
  if (!current()) return;
  const rows = page.items.map((r) => html`<tr><td>${T(KINDS[r.kind])}</td><td><code>${r.decision_number}</code></td>
    <td>${r.party_name}${r.credit_code ? html` <code>${r.credit_code}</code>` : ""}${r.id_number_masked ? html` <code>${r.id_number_masked}</code>` : ""}</td>
    <td>${r.category}</td><td>${r.content}</td><td class="num">${r.fine_amount ?? ""}</td><td>${r.decision_date}</td><td>${r.authority}</td></tr>`);
  put("credit-result", html`<p class="muted">${T("共 {n} 条", {n: page.total})}</p>
    ${table([T("类别"), T("决定文书号"), T("行政相对人"), T("许可类别 / 处罚类别"), T("内容"), T("罚款（元）"), T("决定日期"), T("决定机关")], rows, T("无"), 'id="credit-table"')}`);
}

export async function checkLists() {
  const q = document.getElementById("credit-q").value.trim();
  if (!CODE.test(q)) { put("credit-result", html`<p class="err">${T("请输入统一社会信用代码")}</p>`); return; }
  const a = await api("creditList", {p: {credit_code: q}});
  const lists = a.lists.map((m) => html`<div class="card ${m.name === "black" ? "bad" : "ok"}"><h3>${T(LISTS[m.name])}</h3>
    ${m.rules.map((h) => html`<p><b>${h.reason}</b> <code>${h.rule}</code>${h.until ? html` · ${T("列入至 {d}", {d: h.until})}` : ""}</p>
      <ul>${h.records.map((r) => html`<li><code>${r.decision_number}</code> ${r.decision_date} ${r.category} ${r.authority}</li>`)}</ul>`)}</div>`);
  put("credit-result", html`<h3><code>${a.credit_code}</code></h3>${lists.length ? lists : html`<p>${T("不在红黑名单上")}</p>`}`);
}

export async function loadCredit() {
  renderCreditForms();
  const s = await api("creditStats");
  const rows = s.units.map((u) => html`<tr><td>${deptName(u.unit)}</td><td class="num">${fmtNum(u.permits)}</td><td class="num">${fmtNum(u.penalties)}</td>
    <td class="num">${fmtNum(u.late)}</td><td class="num">${fmtNum(u.missing)}</td><td class="num">${(u.publication_rate * 100).toFixed(2)}%</td><td class="num">${(u.on_time_rate * 100).toFixed(2)}%</td></tr>`);
  const t = s.total;
  put("credit-stats", html`<h3>${T("公示情况")}</h3>
    <p>${T("{units} 个单位报送，行政许可 {p} 条、行政处罚 {x} 条，公示率 {r}，按时率 {o}。", {units: s.submitting_units, p: fmtNum(t.permits), x: fmtNum(t.penalties), r: (t.publication_rate * 100).toFixed(2) + "%", o: (t.on_time_rate * 100).toFixed(2) + "%"})}</p>
    ${table([T("单位"), T("行政许可"), T("行政处罚"), T("逾期报送"), T("未报送"), T("公示率"), T("按时率")], rows, T("无"), 'id="credit-stats-table"')}`);
}
