// 基础信息库: the population and legal-person libraries. Gathering progress per source and in
// total (GET /api/v1/libraries; the operator also sees the pass under way through GET
// /api/v1/libraries/gather, and starts one), and the conflict list (校核纠错) the quality
// check fills: the operator reads every conflict, a department those where it is one of the
// two sources, and either closes one with how it was settled.
import {html, put, table, fmtNum, fmtTime, T} from "/ui.js";
import {api, deptName, notice, isOperator, newest} from "/core.js";

const STATES = {new: "待汇集", gathering: "汇集中", done: "已完成", awaiting_grant: "等待授权", error: "出错", withdrawn: "已撤出目录"};
const STATE_CLASS = {new: "pending", gathering: "open", done: "ok", awaiting_grant: "pending", error: "bad", withdrawn: "retired"};
const ROLES = {source: "源头", witness: "核对"};
const KINDS = {mismatch: "两源不一致", deceased_insured: "已死亡仍参保"};
const RESOLUTIONS = {corrected: "已在源头更正", source_confirmed: "以源头为准", dismissed: "并非错误"};
// How the library itself closes a conflict no longer seen (not offered in the form).
const CLOSED_BY_LIBRARY = {cleared: "两源已一致", vanished: "源头已无此记录"};
const LIMIT = 20;
// The conflict list's view, kept while the tab is open (paging and the filter).
const V = {library: "person", status: "open", offset: 0, items: {}};
let polling = 0;

const stateTag = (T, s) => html`<span class="tag ${STATE_CLASS[s] || ""}" title="${s}">${T(STATES[s] || s)}</span>`;

function progress(T, s) {
  if (s.total_rows === null || s.total_rows === undefined) return html`<span class="muted">—</span>`;
  const done = s.state === "done" ? s.total_rows : Math.min(s.watermark, s.total_rows);
  const pct = s.total_rows ? Math.floor((done / s.total_rows) * 100) : 100;
  return html`<progress max="100" value="${pct}" aria-label="${T("进度")}"></progress> <span class="small">${pct}% · ${fmtNum(done)} / ${fmtNum(s.total_rows)}</span>`;
}

function sourcesTable(lib) {
  const rows = lib.sources.map((s) => html`<tr data-source="${s.resource_code}"><td>${s.topic} <code>${s.resource_code}</code></td>
    <td>${deptName(s.provider)}</td><td>${T(ROLES[s.role] || s.role)}</td>
    <td>${stateTag(T, s.state)}${s.last_error ? html`<div class="err small">${s.last_error}</div>` : ""}</td>
    <td>${progress(T, s)}</td><td class="num">${fmtNum(s.pass_gathered)}</td><td class="num">${fmtNum(s.gathered)}</td>
    <td class="num" title="${T("本轮清除 {n} 条", {n: fmtNum(s.pass_removed)})}">${fmtNum(s.removed)}</td>
    <td class="num">${fmtNum(s.events_applied)}</td><td>${fmtTime(s.refreshed_at)}</td></tr>`);
  return table([T("来源主题"), T("提供部门"), T("角色"), T("状态"), T("本轮进度"), T("本轮汇集"), T("累计汇集"), T("源头已无而清除"), T("变更事件"), T("最近汇集")],
    rows, T("尚无来源"), `id="lib-sources-${lib.library}"`);
}

function passBlock(T, status) {
  const p = status.current || status.last;
  if (!p) return html`<p class="muted">${T("尚未汇集")}</p>`;
  const skipped = Object.entries(p.skipped).map(([code, why]) => html`<li><code>${code}</code> ${why}</li>`);
  const errors = Object.entries(p.errors).map(([code, why]) => html`<li class="err"><code>${code}</code> ${why}</li>`);
  const head = status.running
    ? T("汇集中：本轮已汇集 {n} 条，已用 {s} 秒", {n: fmtNum(p.total), s: p.seconds.toFixed(1)})
    : T("上一轮（{kind}）：汇集 {n} 条，清除源头已无的 {d} 条，用时 {s} 秒（其中质量核对 {c} 秒），结束于 {t}", {
      kind: p.full ? T("全量") : T("增量"), n: fmtNum(p.total), d: fmtNum(p.total_removed), s: p.seconds.toFixed(1), c: p.check_seconds.toFixed(1), t: fmtTime(p.finished_at)});
  return html`<p id="lib-pass" role="status">${head}</p>${skipped.length ? html`<p class="small">${T("跳过")}</p><ul class="small">${skipped}</ul>` : ""}
    ${errors.length ? html`<ul class="small">${errors}</ul>` : ""}`;
}

export async function loadLibraries() {
  const libs = await api("libraries");
  let status = null;
  if (isOperator()) status = await api("libraryGather");
  const total = libs.reduce((n, l) => n + l.gathered, 0);
  const open = libs.reduce((n, l) => n + l.conflicts.open, 0);
  const cards = libs.map((l) => html`<div class="card" id="lib-${l.library}"><h3>${l.name} <span class="muted small">${T("按{key}", {key: l.key === "id_number" ? T("身份证号码") : T("统一社会信用代码")})}</span></h3>
    <p>${T("{n} 个来源，累计汇集 {g} 条；冲突 {o} 条待处理、{r} 条已处理。", {n: l.sources.length, g: fmtNum(l.gathered), o: fmtNum(l.conflicts.open), r: fmtNum(l.conflicts.resolved)})}</p>
    ${sourcesTable(l)}</div>`);
  const controls = status ? html`<div class="row"><button type="button" class="primary" data-act="lib-gather" data-full="false" ${status.running ? "disabled" : ""}>${T("增量汇集")}</button>
    <button type="button" data-act="lib-gather" data-full="true" ${status.running ? "disabled" : ""}>${T("全量汇集")}</button></div>${passBlock(T, status)}` : "";
  put("lib-summary", html`<p id="lib-total">${T("两库累计汇集 {g} 条，待处理冲突 {o} 条。", {g: fmtNum(total), o: fmtNum(open)})}</p>${controls}`);
  put("lib-sources", cards);
  if (status && status.running) schedule();
  await loadConflicts();
}

// While a pass runs, the view follows it (once a second) as long as the tab stays open.
function schedule() {
  clearTimeout(polling);
  polling = setTimeout(() => {
    const tab = document.getElementById("tab-libraries");
    if (!tab || !tab.classList.contains("on")) return;
    loadLibraries().catch(() => undefined);
  }, 1000);
}

export async function startGathering(el) {
  const full = el.dataset.full === "true";
  await api("libraryGatherStart", {json: {full}});
  await loadLibraries();
  notice(full ? T("全量汇集已开始。") : T("增量汇集已开始。"));
}

function conflictFilter(T) {
  const opt = (v, label, cur) => html`<option value="${v}" ${v === cur ? "selected" : ""}>${label}</option>`;
  return html`<form data-form="lib-conflicts" class="row">
    <label for="lib-c-library">${T("库")}</label><select id="lib-c-library" name="library">${opt("person", T("人口基础信息库"), V.library)}${opt("enterprise", T("法人基础信息库"), V.library)}</select>
    <label for="lib-c-status">${T("状态")}</label><select id="lib-c-status" name="status">${opt("open", T("待处理"), V.status)}${opt("resolved", T("已处理"), V.status)}${opt("", T("全部"), V.status)}</select>
    <button type="submit">${T("检索")}</button></form>`;
}

export async function loadConflicts() {
  const current = newest("lib-conflicts");
  const page = await api("libraryConflicts", {p: {library: V.library}, q: {status: V.status, offset: V.offset, limit: LIMIT}});
  if (!current()) return;
  V.items = Object.fromEntries(page.items.map((c) => [String(c.id), c]));
  const rows = page.items.map((c) => html`<tr><td class="num">${c.id}</td><td><code>${c.subject}</code></td><td>${T(KINDS[c.kind] || c.kind)}</td><td><code>${c.element}</code></td>
    <td>${c.value ?? "—"} <span class="muted small">${deptName(c.provider)}</span></td><td>${c.other_value ?? "—"} <span class="muted small">${deptName(c.other_provider)}</span></td>
    <td>${c.status === "open" ? html`<span class="tag open">${T("待处理")}</span>` : html`<span class="tag ok">${T(RESOLUTIONS[c.resolution] || CLOSED_BY_LIBRARY[c.resolution] || c.resolution)}</span> <span class="small muted">${c.resolved_by} · ${fmtTime(c.resolved_at)}</span>`}</td>
    <td>${fmtTime(c.found_at)}</td><td>${c.status === "open" ? html`<button type="button" data-act="lib-resolve" data-id="${c.id}">${T("处理")}</button>` : (c.note || "")}</td></tr>`);
  const last = Math.min(page.offset + page.items.length, page.total);
  put("lib-conflicts", html`<h3>${T("冲突清单（校核纠错）")}</h3>
    <p class="muted">${T("两个来源对同一数据元的值不一致，或已死亡人员仍在参保：由源头部门核实更正，或确认源头值。")}</p>
    ${conflictFilter(T)}
    <p class="muted" id="lib-c-total">${T("共 {n} 条，第 {a}–{b} 条", {n: fmtNum(page.total), a: page.total ? page.offset + 1 : 0, b: last})}</p>
    ${table([T("编号"), T("主体"), T("类型"), T("数据元"), T("源头值"), T("另一来源的值"), T("状态"), T("发现时间"), ""], rows, T("没有冲突"), 'id="lib-conflicts-table"')}
    <div class="row"><button type="button" data-act="lib-page" data-by="-1" ${page.offset ? "" : "disabled"}>${T("上一页")}</button>
    <button type="button" data-act="lib-page" data-by="1" ${last < page.total ? "" : "disabled"}>${T("下一页")}</button></div>`);
  put("lib-resolve", "");
}

export function filterConflicts(form) {
  V.library = form.elements.library.value;
  V.status = form.elements.status.value;
  V.offset = 0;
  return loadConflicts();
}

export function pageConflicts(el) {
  V.offset = Math.max(0, V.offset + Number(el.dataset.by) * LIMIT);
  return loadConflicts();
}

export function openResolve(el) {
  const c = V.items[el.dataset.id];
  if (!c) return;
  put("lib-resolve", html`<form data-form="lib-resolve" class="card form grid" data-id="${c.id}">
    <h3>${T("处理冲突 #{id}", {id: c.id})}</h3><div></div>
    <span>${T("主体")}</span><span><code>${c.subject}</code> · <code>${c.element}</code>: ${c.value ?? "—"} / ${c.other_value ?? "—"}</span>
    <label for="lib-r-resolution">${T("处理结果")}</label><select id="lib-r-resolution" name="resolution">${Object.entries(RESOLUTIONS).map(([v, w]) => html`<option value="${v}">${T(w)}</option>`)}</select>
    <label for="lib-r-note">${T("说明")}</label><textarea id="lib-r-note" name="note" rows="2" maxlength="2000"></textarea>
    <div></div><div><button type="submit" class="primary">${T("提交")}</button></div></form>`);
  document.getElementById("lib-r-resolution").focus();
}

export async function resolveConflict(form) {
  const note = form.elements.note.value.trim();
  const body = {resolution: form.elements.resolution.value};
  if (note) body.note = note;
  const out = await api("libraryResolve", {p: {conflict_id: form.dataset.id}, json: body});
  // The view is redrawn first, so what the notice says is already on the page.
  await loadLibraries();
  notice(T("冲突 #{id} 已处理：{how}", {id: out.id, how: T(RESOLUTIONS[out.resolution] || out.resolution)}));
}
