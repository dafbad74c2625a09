// exchange portal: one page over the public API, authenticated by a department's key.
// Native ES modules, no build step: ui.js (rendering), glossary.js (every label and code in
// Chinese and English), dashboard.js (运行监测). Extension hooks: window.EXCHANGE_TABS =
// [[id, label], ...] (with their own <section id="tab-ID">) and
// window.EXCHANGE_TOPIC_ACTIONS(topic, element).
import {$, toHTML, html, put, tag, label, table, fmtTime, addDays, fmtNum, T, codeText} from "/ui.js";
import {codesOf, lang, setLang, applyStatic} from "/glossary.js";
import {startDashboard, stopDashboard} from "/dashboard.js";
import {loadLicences, verifyLicence} from "/licences.js";
import {loadSubscriptions, loadDeadLetters, settleDeadLetters} from "/subscriptions.js";
import {renderVerifyForm, verifyClaims} from "/verify.js";
import {loadCredit, searchCredit, checkLists} from "/credit.js";
import {loadLibraries, startGathering, filterConflicts, pageConflicts, openResolve, resolveConflict} from "/libraries.js";

// --- state, API and errors -------------------------------------------------------------------

// Demo deployments list demo departments and accept keys in the address; otherwise a
// department signs in once and its key is never shown (the server says which, in a <meta>).
const DEMO = document.querySelector('meta[name="exchange-demo"]')?.content !== "false";
// Departments worth offering in the demo picker: the banner's demo keys and the core providers.
const DEMO_UNITS = [["mzj", "市民政局"], ["gaj", "市公安局"], ["scjgj", "市市场监管局"], ["rsj", "市人力资源社会保障局"],
  ["gjj", "市住房公积金管理中心"], ["swj", "市税务局"], ["ghzyj", "市规划和自然资源局"], ["ybj", "市医保局"],
  ["wjw", "市卫生健康委"], ["zsj", "市政务服务数据管理局"]];

const S = {me: null, clock: null, depts: {}, topics: {}, tab: "catalog", auditAfter: 0, gen: 0, key: ""};

class ApiError extends Error {
  constructor(status, body, requestId) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || `http_${status}`;
    this.requestId = e.request_id || requestId || "";
    this.detail = e.detail || null;
  }
}
// Asked for before any identity was chosen: said in words, never sent to the API.
class NoIdentity extends Error { constructor() { super(T("请先在“身份”中选择身份或粘贴 key。")); this.code = "no_identity"; } }
// An answer that arrived after the identity changed: dropped, it belongs to someone else.
class Stale extends Error {}

const key = () => S.key;

// Every endpoint the portal calls, spelled as in the OpenAPI schema (tests/web checks each
// one is there, so renaming a route breaks a test rather than the page). Nothing else in
// these scripts builds an /api/ path.
const API = {
  clock: "GET /api/v1/clock",
  advance: "POST /api/v1/clock/advance",
  departments: "GET /api/v1/departments",
  whoami: "GET /api/v1/whoami",
  topics: "GET /api/v1/catalog/topics",
  topic: "GET /api/v1/catalog/topics/{front}/{seq}",
  changes: "GET /api/v1/catalog/changes",
  applications: "GET /api/v1/applications",
  apply: "POST /api/v1/applications",
  application: "GET /api/v1/applications/{app_id}",
  approve: "POST /api/v1/applications/{app_id}/approve",
  reject: "POST /api/v1/applications/{app_id}/reject",
  dispute: "POST /api/v1/applications/{app_id}/dispute",
  disputeGet: "GET /api/v1/disputes/{dispute_id}",
  message: "POST /api/v1/disputes/{dispute_id}/messages",
  decide: "POST /api/v1/disputes/{dispute_id}/decide",
  grants: "GET /api/v1/grants",
  grant: "GET /api/v1/grants/{grant_id}",
  revoke: "POST /api/v1/grants/{grant_id}/revoke",
  check: "POST /api/v1/authz/check",
  query: "POST /api/v1/exchange/{front}/{seq}/query",
  export: "GET /api/v1/exchange/{front}/{seq}/export",
  verify: "POST /api/v1/exchange/{front}/{seq}/verify",
  auditEntries: "GET /api/v1/audit/entries",
  auditStats: "GET /api/v1/audit/stats",
  auditVerify: "GET /api/v1/audit/verify",
  operations: "GET /api/v1/audit/operations",
  licenceStats: "GET /api/v1/licences/stats",
  licenceVerify: "POST /api/v1/licences/verify",
  subscriptions: "GET /api/v1/subscriptions",
  deadLetters: "GET /api/v1/subscriptions/{sub_id}/dead-letters",
  retryDeadLetters: "POST /api/v1/subscriptions/{sub_id}/dead-letters/retry",
  discardDeadLetters: "POST /api/v1/subscriptions/{sub_id}/dead-letters/discard",
  creditRecords: "GET /api/v1/credit/records",
  creditStats: "GET /api/v1/credit/stats",
  creditList: "GET /api/v1/credit/lists/{credit_code}",
  libraries: "GET /api/v1/libraries",
  libraryGather: "GET /api/v1/libraries/gather",
  libraryGatherStart: "POST /api/v1/libraries/gather",
  libraryConflicts: "GET /api/v1/libraries/{library}/conflicts",
  libraryResolve: "POST /api/v1/libraries/conflicts/{conflict_id}/resolve",
};
// "101001001/000001" → the {front}/{seq} path parameters.
function rc(code) { const [front, seq] = String(code).split("/"); return {front, seq}; }
function url(name, params = {}, query = null) {
  const out = API[name].split(" ")[1].replace(/\{(\w+)\}/g, (_, k) => {
    if (params[k] === undefined || params[k] === "") throw new Error(`${name}: ${k} missing`);
    return encodeURIComponent(params[k]);
  });
  const q = query instanceof URLSearchParams ? query : new URLSearchParams();
  if (query && !(query instanceof URLSearchParams)) {
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const qs = q.toString();
  return qs ? out + "?" + qs : out;
}

// api("approve", {p: {app_id: 3}, json: {...}}); q: query parameters; text: raw body wanted.
async function api(name, opts = {}) {
  if (!key()) throw new NoIdentity();
  const gen = S.gen;
  const method = API[name].split(" ")[0];
  const headers = Object.assign({"Authorization": "Bearer " + key()}, opts.headers || {});
  const init = {method, headers};
  if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(opts.json); }
  const resp = await fetch(url(name, opts.p || {}, opts.q), init);
  if (gen !== S.gen) throw new Stale();
  const rid = resp.headers.get("x-request-id") || "";
  if (opts.text && resp.ok) return {text: await resp.text(), headers: resp.headers};
  const body = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (gen !== S.gen) throw new Stale();
  if (!resp.ok) throw new ApiError(resp.status, body, rid);
  return body;
}

function errorBlock(e) {
  if (e instanceof NoIdentity) return html`<b>${codeText("error", "no_identity")}</b> ${e.message}`;
  if (!(e instanceof ApiError)) return html`<b>${T("错误")}</b> ${String((e && e.message) || e)}`;
  return html`<b>${e.status} ${codeText("error", e.code)} <code>${e.code}</code></b> ${e.message}
    ${e.requestId ? html`<span class="muted small"> · ${T("请求编号")} <code>${e.requestId}</code></span>` : ""}
    ${e.detail ? html`<div class="small muted">${T("详情")}: ${detailText(e.detail)}</div>` : ""}`;
}
function showError(e) {
  if (!e) { put("error", ""); return; }
  if (e instanceof Stale) return;
  // Shown on the page; only a fault of the page itself goes to the console.
  if (!(e instanceof ApiError) && !(e instanceof NoIdentity)) console.error(e);
  put("error", html`<button class="close" data-act="close-error" aria-label="${T("关闭")}" title="${T("关闭")}">×</button>${errorBlock(e)}`);
  window.scrollTo({top: 0, behavior: "smooth"});
}
let noticeTimer = 0;
function notice(content) {
  put("notice", content);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => put("notice", ""), 8000);
}
const guard = (p) => Promise.resolve(p).then(() => undefined, showError);

// Key/value details (event details, error details, catalog changes) as words, not JSON.
function valueText(v) {
  if (v === null || v === undefined || v === "") return "—";
  if (Array.isArray(v)) return v.map(valueText).join(T("、"));
  if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${k}: ${valueText(x)}`).join("；");
  return String(v);
}
const DETAIL_WORDS = {items: "信息项", rejected: "未通过", grant_id: "授权", valid_until: "有效期至", daily_quota: "每日限额", decision: "决定",
  dispute_id: "争议", reason: "理由", side: "", provider: "提供单位", deadline: "审核期限"};
function detailText(d) {
  const parts = Object.entries(d || {}).filter(([, v]) => v !== null && v !== undefined && !(Array.isArray(v) && !v.length));
  return parts.map(([k, v]) => {
    let shown = valueText(v);
    if (k === "items" || k === "rejected") shown = html`${v.map((i) => html`<code>${i}</code> `)}`;
    else if (k === "grant_id") shown = `#${v}`;
    else if (k === "deadline") shown = fmtTime(v);
    else if (k === "provider") shown = deptName(v);
    else if (k === "decision") shown = codeText("decision", v);
    else if (k === "side") shown = codeText("side", v);
    return html`<span class="kv">${DETAIL_WORDS[k] !== undefined ? (DETAIL_WORDS[k] ? T(DETAIL_WORDS[k]) : "") : k}${DETAIL_WORDS[k] === "" ? "" : " "}${shown}</span> `;
  });
}
// A catalog version's changes: first registration, field from → to, items added / removed / changed.
function changesText(c) {
  if (!c || !Object.keys(c).length) return T("首次登记");
  return Object.entries(c).map(([k, v]) => {
    if (k === "items" && v && typeof v === "object") {
      const out = [];
      if (v.added) out.push(html`${T("新增")} ${v.added.map((i) => html`<code>${typeof i === "object" ? i.field : i}</code> `)}`);
      if (v.removed) out.push(html`${T("删除")} ${v.removed.map((i) => html`<code>${i}</code> `)}`);
      if (v.changed) out.push(html`${T("修改")} ${Object.entries(v.changed).map(([f, ch]) => html`<code>${f}</code>（${valueText(Object.fromEntries(Object.entries(ch).map(([a, b]) => [a, `${valueText(b.from)} → ${valueText(b.to)}`])))}） `)}`);
      return html`<span class="kv">${T("信息项")}${T("：")}${out}</span> `;
    }
    if (v && typeof v === "object" && "from" in v) return html`<span class="kv"><code>${k}</code> ${valueText(v.from)} → ${valueText(v.to)}</span> `;
    return html`<span class="kv"><code>${k}</code> ${valueText(v)}</span> `;
  });
}

// Departments: names for codes everywhere.
async function loadDepts() {
  try {
    const units = await api("departments");
    S.depts = Object.fromEntries(units.map((d) => [d.code, d]));
  } catch (e) { if (e instanceof Stale) throw e; S.depts = {}; }
}
function deptName(code) {
  if (code === "operator" || code === "platform") return T("平台运营方");
  const d = S.depts[code];
  if (d) return d.short_name || d.name;
  const demo = DEMO_UNITS.find(([c]) => c === code);
  return demo ? demo[1] : code;
}
const dept = (code) => html`${deptName(code)}<code class="en">${code}</code>`;

async function topicOf(code) {
  if (!S.topics[code]) S.topics[code] = await api("topic", {p: rc(code)});
  return S.topics[code];
}
function itemName(topic, field) {
  const it = topic && topic.items.find((i) => i.field === field);
  return it ? it.name : "";
}

// --- identity: key box, role picker, recent keys ---------------------------------------------

function recentKeys() {
  try { return JSON.parse(localStorage.getItem("exchange.recent") || "[]"); } catch (e) { return []; }
}
function remember(k, code, name) {
  if (!k || !DEMO) return;
  const list = recentKeys().filter((r) => r.key !== k);
  list.unshift({key: k, code, name});
  localStorage.setItem("exchange.recent", JSON.stringify(list.slice(0, 15)));
}
function forget(k) { localStorage.setItem("exchange.recent", JSON.stringify(recentKeys().filter((r) => r.key !== k))); }
function codeOfKey(k) {
  if (k.startsWith("exk_operator_")) return "operator";
  const m = /^exk_(.+)_[0-9a-f]{32}$/.exec(k);
  return m ? m[1] : "";
}

function renderIdentity() {
  if (!DEMO) {
    put("identity", S.me
      ? html`<span class="who" id="who">${S.me.name} (${S.me.code})</span> <button type="button" data-act="sign-out">${T("退出")}</button>`
      : html`<form data-form="sign-in" class="signin"><label for="key">${T("API key")}</label>
          <input id="key" name="key" type="password" autocomplete="off" spellcheck="false" required placeholder="${T("粘贴 key")}">
          <button class="primary">${T("登录")}</button></form><span class="who" id="who">${T("未登录：请用本单位 key 登录")}</span>`);
    return;
  }
  const recent = recentKeys();
  const current = key();
  const known = new Set(recent.map((r) => r.code));
  const opts = [html`<option value="">${T("— 选择身份 —")}</option>`];
  if (recent.length) {
    opts.push(html`<optgroup label="${T("最近使用")}">${recent.map((r, i) =>
      html`<option value="key:${i}" ${r.key === current ? "selected" : ""}>${r.code === "operator" ? T("平台运营方") : r.name} (${r.code})</option>`)}</optgroup>`);
  }
  const missing = DEMO_UNITS.filter(([c]) => !known.has(c));
  if (missing.length) {
    opts.push(html`<optgroup label="${T("演示部门（需粘贴 key）")}">${missing.map(([c]) =>
      html`<option value="dept:${c}">${deptName(c)} (${c}) — ${T("粘贴 key…")}</option>`)}</optgroup>`);
  }
  if (!known.has("operator")) opts.push(html`<option value="dept:operator">${T("平台运营方")} (operator) — ${T("粘贴 key…")}</option>`);
  if (current && !recent.some((r) => r.key === current)) opts.push(html`<option value="" selected>${T("（当前 key）")}</option>`);
  opts.push(html`<option value="forget">${T("从列表移除当前 key")}</option>`);
  put("identity", html`<form data-form="identity" class="signin"><label for="role">${T("身份")}</label><select id="role">${opts}</select>
    <label for="key" class="sr-only">${T("API key")}</label><input id="key" name="key" type="password" autocomplete="off" spellcheck="false" placeholder="${T("粘贴 key")}"></form>
    <span class="who" id="who">${S.me ? `${S.me.name} (${S.me.code})` : current ? "" : T("未登录：请选择身份或粘贴 key")}</span>`);
  $("key").value = current;
}

function onRoleChange() {
  const v = $("role").value;
  $("role-hint").textContent = "";
  if (v.startsWith("key:")) {
    const r = recentKeys()[Number(v.slice(4))];
    if (r) setKey(r.key);
  } else if (v.startsWith("dept:")) {
    const code = v.slice(5);
    $("role-hint").textContent = code === "operator"
      ? T("请粘贴 operator key（启动横幅 Operator key，或 .exchange/operator.key）")
      : T("请粘贴 {name} ({code}) 的 key：启动横幅中的 Demo key，或 exchange.security.demo_key(operator_key, \"{code}\")", {name: deptName(code), code});
    $("key").focus();
  } else if (v === "forget") {
    forget(key());
    renderIdentity();
  }
}

function setKey(k) {
  S.key = k;
  localStorage.setItem("exchange.key", k);
  guard(identify().then(() => activate(S.tab)));
}

// Everything one identity saw goes when another takes over: lists, detail panes, notices.
const PANES = ["error", "notice", "results", "detail", "apps-list", "apps-detail", "review-list", "review-detail",
  "disputes-list", "dispute-detail", "grants-list", "grant-detail", "check-box", "exchange-form", "exchange-result",
  "audit-stats", "audit-verify", "audit-list", "platform-clock", "platform-effects", "depts-box", "feed"];
function resetPanes() {
  S.gen += 1;  // answers still on their way belong to the previous identity
  clearTimeout(noticeTimer);
  for (const id of PANES) if ($(id)) put(id, "");
  $("total").textContent = "";
  stopDashboard();
  feedRunning = false;
  feedCursor = 0;
}

async function identify() {
  resetPanes();
  S.me = null;
  S.topics = {};
  $("role-hint").textContent = "";
  if (!key()) { renderIdentity(); renderTabs(); return; }
  try {
    const me = await api("whoami");
    S.me = {code: me.code, name: me.name, operator: me.operator};
  } catch (e) {
    if (e instanceof Stale) throw e;
    renderIdentity();
    $("who").textContent = T("key 无效");
    if (!DEMO) { S.key = ""; localStorage.removeItem("exchange.key"); }
    throw e;
  }
  remember(key(), S.me.code, S.me.name);
  await loadDepts();
  renderIdentity();
  renderTabs();
  await refreshClock();
  await refreshBadges();
}

async function refreshClock() {
  if (!key()) return;
  try {
    const c = await api("clock");
    S.clock = c;
    const days = c.offset_seconds / 86400;
    $("clock").textContent = T("平台时间 {t}（北京）", {t: fmtTime(c.now)}) + (c.offset_seconds ? T(" · 已推进 {d} 天", {d: days.toFixed(days % 1 ? 1 : 0)}) : "");
  } catch (e) { $("clock").textContent = ""; }
}
function platformNow() { return S.clock ? new Date(S.clock.now) : new Date(); }
function platformToday() { return S.clock ? S.clock.today : new Date().toISOString().slice(0, 10); }

async function refreshBadges() {
  const b = document.querySelector('#tabs [data-tab="review"] .badge');
  if (!b) return;
  b.textContent = "";
  if (!S.me) return;
  try {
    const page = await api("applications", {q: {role: "provider", status: "pending_review", limit: 1}});
    b.textContent = page.total ? String(page.total) : "";
  } catch (e) { b.textContent = ""; }
}

// --- tabs and the address bar ----------------------------------------------------------------

const TABS = [
  ["catalog", "目录检索", () => search()],
  ["applications", "我的申请", () => loadApps("consumer")],
  ["review", "审核待办", () => loadApps("provider")],
  ["disputes", "争议协调", () => loadDisputes()],
  ["grants", "授权管理", () => loadGrants()],
  ["exchange", "数据交换", () => loadExchange()],
  ["audit", "审计日志", () => loadAudit()],
  ["ops", "运行监测", () => startDashboard({api, T, deptName}), true],
  ["licences", "电子证照", () => loadLicences({api, T, deptName})],
  ["subs", "订阅分发", () => { renderVerifyForm(subsCtx()); return loadSubscriptions(subsCtx()); }],
  ["credit", "信用双公示", () => loadCredit({api, T, deptName})],
  ["libraries", "基础信息库", () => loadLibraries(libsCtx())],
  ["platform", "平台时钟", () => loadPlatform()],
  ["departments", "接入单位", () => loadDepartments()],
  ["changes", "目录变更", () => startFeed()],
];
const visibleTabs = () => TABS.filter(([, , , opOnly]) => !opOnly || (S.me && S.me.operator))
  .concat((window.EXCHANGE_TABS || []).map(([id, text]) => [id, text, null]));

function renderTabs() {
  put("tabs", visibleTabs().map(([id, text]) => html`<button role="tab" id="tabbtn-${id}" data-tab="${id}" data-act="tab"
    aria-controls="tab-${id}" aria-selected="${id === S.tab}" tabindex="${id === S.tab ? 0 : -1}" class="${id === S.tab ? "on" : ""}">${T(text)}${id === "review" ? html`<span class="badge"></span>` : ""}</button>`));
}

function switchTab(id) {
  if (S.tab === "ops" && id !== "ops") stopDashboard();
  S.tab = id;
  for (const b of $("tabs").children) {
    const on = b.dataset.tab === id;
    b.classList.toggle("on", on);
    b.setAttribute("aria-selected", String(on));
    b.tabIndex = on ? 0 : -1;
  }
  for (const s of document.querySelectorAll("main > section")) s.classList.toggle("on", s.id === "tab-" + id);
  history.replaceState(null, "", "#tab=" + encodeURIComponent(id));
}
function activate(id) {
  if (!visibleTabs().some(([tid]) => tid === id)) id = "catalog";
  switchTab(id);
  const t = TABS.find(([tid]) => tid === id);
  if (t && key()) return t[2]();
  if (!key()) put("error", html`${errorBlock(new NoIdentity())}`);
  return Promise.resolve();
}

// --- catalog ---------------------------------------------------------------------------------

let offset = 0; const limit = 20;

async function search() {
  const p = new URLSearchParams({offset, limit, status: $("status").value});
  for (const [id, name] of [["q", "q"], ["category", "category"], ["sharing", "sharing_type"], ["provider", "provider"]]) {
    if ($(id).value.trim()) p.set(name, $(id).value.trim());
  }
  const page = await api("topics", {q: p});
  $("total").textContent = page.total ? T("共 {n} 条，第 {a}–{b} 条", {n: page.total, a: offset + 1, b: Math.min(offset + limit, page.total)}) : T("共 0 条");
  put("results", page.items.map((t) => html`<tr class="click" tabindex="0" data-act="topic" data-code="${t.resource_code}">
    <td><code>${t.resource_code}</code></td><td>${t.name}</td><td>${dept(t.provider)}</td><td>${codeText("group", t.group)}</td>
    <td>${tag("sharing", t.sharing.type)}</td><td>${codeText("resource_type", t.resource_type)}</td><td>${tag("topic_status", t.status)}</td></tr>`));
  // A new search is about new topics: the one opened before goes.
  put("detail", "");
}

async function detail(code) {
  const t = await api("topic", {p: rc(code)});
  S.topics[code] = t;
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

async function submitApply(form) {
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

// --- applications: consumer list, provider inbox, detail with review and dispute forms -------

function filterBar(pre, role) {
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
function deadlineCell(app) {
  if (!app.review_deadline) return html`<span class="muted">—</span>`;
  const pending = app.status === "pending_review";
  const left = (new Date(app.review_deadline) - platformNow()) / 86400000;
  let note = "";
  if (app.overdue) note = html` <span class="tag late">${T("已逾期 {d} 天", {d: Math.abs(left).toFixed(1)})}</span>`;
  else if (pending) note = html` <span class="muted small" title="${T("日历日；期限本身按工作日计算")}">${T("剩 {d} 天", {d: left.toFixed(1)})}</span>`;
  return html`<span class="nowrap">${fmtTime(app.review_deadline)}</span>${note}`;
}

async function loadApps(role) {
  const pre = role === "consumer" ? "apps" : "review";
  const p = new URLSearchParams({role, limit: 200});
  if ($(pre + "-status").value) p.set("status", $(pre + "-status").value);
  if ($(pre + "-overdue").checked) p.set("overdue", "true");
  if ($(pre + "-topic").value.trim()) p.set("topic", $(pre + "-topic").value.trim());
  const page = await api("applications", {q: p});
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

function outcomeSummary(app) {
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
function decisionsTable(app, t) {
  const rows = app.decisions.map((d) => html`<tr data-field="${d.field}"><td><code>${d.field}</code></td><td>${itemName(t, d.field)}</td><td>${tag("sharing", d.sharing_type)}</td>
    <td>${tag("outcome", d.outcome)}</td><td class="reason">${codeText("reason", d.reason_code)}${d.reason ? html`<br><span class="small">${d.reason}</span>` : ""}</td></tr>`);
  return table([T("字段"), T("信息项"), T("共享类型"), T("结果"), T("说明 / 依据")], rows, T("无"), 'class="decisions"');
}

async function openApp(id, pane) {
  const app = await api("application", {p: {app_id: id}});
  const t = await topicOf(app.topic).catch(() => null);
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

async function submitApprove(form) {
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
async function submitReject(form) {
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
async function submitDispute(form) {
  const items = [...form.querySelectorAll('input[name="items"]:checked')].map((x) => x.value);
  const d = await api("dispute", {p: {app_id: form.dataset.id}, json: {reason: form.elements.reason.value.trim(), items}});
  await activate("disputes");
  await openDispute(d.id);
  notice(T("争议 #{id} 已提起，双方可在协调记录中沟通，由平台运营方决定。", {id: d.id}));
}

// --- disputes --------------------------------------------------------------------------------

const decisionTag = (d) => tag("decision", d, d === "uphold" ? "refused" : "granted");

async function loadDisputes() {
  const roles = S.me && S.me.operator ? ["consumer"] : ["consumer", "provider"];
  const pages = await Promise.all(roles.map((r) => api("applications", {q: {role: r, limit: 500}})));
  const ids = [...new Set(pages.flatMap((p) => p.items).filter((a) => a.dispute_id).map((a) => a.dispute_id))].sort((a, b) => b - a);
  const disputes = await Promise.all(ids.slice(0, 60).map((id) => api("disputeGet", {p: {dispute_id: id}})));
  const rows = disputes.map((d) => html`<tr class="click" tabindex="0" data-act="open-dispute" data-id="${d.id}"><td>#${d.id}</td><td>#${d.application_id}</td>
      <td>${dept(d.consumer)}</td><td>${dept(d.provider)}</td><td>${d.items.map((i) => html`<code>${i}</code> `)}</td>
      <td>${tag("dispute_status", d.status)}</td><td class="nowrap">${fmtTime(d.opened_at)}</td><td>${d.decision ? decisionTag(d.decision) : ""}</td></tr>`);
  put("disputes-list", html`<div class="row"><button data-act="reload-disputes">${T("刷新")}</button>
      <form data-form="open-dispute" class="row" style="margin:0"><label for="dispute-no" class="sr-only">${T("争议编号")}</label><input id="dispute-no" name="id" type="number" min="1" placeholder="${T("争议编号")}" style="width:100px"><button>${T("打开")}</button></form></div>
    ${table([T("争议"), T("申请"), T("申请单位"), T("提供单位"), T("争议信息项"), T("状态"), T("提起时间"), T("协调决定")], rows, T("暂无争议。申请单位可在被拒绝或退回的申请详情中提起争议。"))}`);
}

async function openDispute(id) {
  const d = await api("disputeGet", {p: {dispute_id: id}});
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

async function submitMessage(form) {
  await api("message", {p: {dispute_id: form.dataset.id}, json: {body: form.elements.body.value}});
  await openDispute(form.dataset.id);
}
async function submitDecide(form) {
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

// --- grants and the authorization check ------------------------------------------------------

function grantsFilter() {
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

async function loadGrants() {
  const p = new URLSearchParams({limit: 200});
  for (const [id, name] of [["grants-status", "status"], ["grants-consumer", "consumer"], ["grants-provider", "provider"], ["grants-topic", "topic"]]) {
    if ($(id).value.trim()) p.set(name, $(id).value.trim());
  }
  const page = await api("grants", {q: p});
  const rows = page.items.map((g) => html`<tr class="click" tabindex="0" data-act="open-grant" data-id="${g.id}"><td>#${g.id}</td><td>${dept(g.consumer)}</td><td>${dept(g.provider)}</td>
      <td><code>${g.topic}</code></td><td>${T("{n} 项", {n: g.items.length})}</td><td class="nowrap">${g.valid_from} ${T("至")} ${g.valid_until}</td>
      <td class="num">${g.daily_quota || T("不限")}</td><td>${tag("grant_status", g.status)}${g.status_reason ? html`<br><span class="small">${statusReason(g.status_reason)}</span>` : ""}</td><td class="nowrap">${fmtTime(g.updated_at)}</td></tr>`);
  put("grants-list", html`<p class="muted small">${T("共 {n} 项；“已过期”指有效期最后一天已过（按平台时钟）。", {n: page.total})}</p>
    ${table([T("授权"), T("申请单位"), T("提供单位"), T("主题"), T("信息项"), T("有效期"), T("每日限额"), T("状态"), T("更新")], rows, T("暂无授权。"))}`);
  renderCheck();
}

async function openGrant(id) {
  const g = await api("grant", {p: {grant_id: id}});
  const t = await topicOf(g.topic).catch(() => null);
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

async function submitRevoke(form) {
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
async function submitCheck(form) {
  const f = form.elements;
  const body = {consumer: f.consumer.value.trim(), topic: f.topic.value.trim(), records: Number(f.records.value || 1)};
  const items = f.items.value.split(/[,，\s]+/).filter(Boolean);
  if (items.length) body.items = items;
  const r = await api("check", {json: body});
  put("check-result", html`<p>${r.allowed ? html`<span class="tag ok">${T("允许")}</span>` : html`<span class="tag bad">${T("拒绝")}</span>`}
    ${T("原因")} ${codeText("check", r.reason)} <code>${r.reason}</code> · ${T("授权")} ${r.grant_id ? html`#${r.grant_id}` : "—"} · ${T("信息项")} ${r.items.map((i) => html`<code>${i}</code> `)}
    · ${T("今日剩余额度")} ${r.remaining_quota === null ? T("不限") : r.remaining_quota}</p>`);
}

// --- exchange through the broker -------------------------------------------------------------

async function loadExchange(topic) {
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

async function renderExchangeItems(code, grants) {
  const t = await topicOf(code);
  const g = (grants || (await api("grants", {q: {consumer: S.me.code, topic: code}})).items).find((x) => x.topic === code && x.status === "active");
  const granted = new Set(g ? g.items : []);
  put("x-items", html`${t.items.map((i) => html`<label title="${granted.has(i.field) ? T("已授权") : T("未授权：勾选将被拒绝")}"><input type="checkbox" name="items" value="${i.field}"> ${i.name} <code>${i.field}</code>
      ${granted.has(i.field) ? html`<span class="tag granted">${T("已授权")}</span>` : html`<span class="tag not_shared">${T("未授权")}</span>`}</label>`)}
    <div class="small muted">${T("不勾选 = 全部已授权信息项；响应只含已授权的信息项，无论提供方返回什么。")}</div>`);
}

async function sampleKeys() {
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

async function submitQuery(form) {
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

// --- audit -----------------------------------------------------------------------------------

function auditFilter() {
  return html`<input id="au-consumer" aria-label="${T("申请单位代码")}" placeholder="${T("申请单位代码")}" size="10"><input id="au-provider" aria-label="${T("提供单位代码")}" placeholder="${T("提供单位代码")}" size="10">
    <input id="au-topic" aria-label="${T("资源代码")}" placeholder="${T("资源代码")}" size="18"><input id="au-rid" aria-label="${T("请求编号")}" placeholder="request id" size="34">
    <input id="au-outcome" aria-label="${T("结果（ok / client.…）")}" placeholder="${T("结果（ok / client.…）")}" size="20">
    <button data-act="audit-search">${T("查询")}</button><button data-act="audit-next">${T("下一页")}</button>`;
}

async function loadAudit() {
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
  const s = await api("auditStats");
  const topic = (k) => html`<code>${k}</code>`;
  put("audit-stats", html`<div class="card"><h3>${T("今日交换量")} <span class="en">${s.day}</span></h3>
    <span class="stat">${T("今日调用")}<b>${fmtNum(s.today.calls)}</b></span><span class="stat">${T("今日交换记录")}<b>${fmtNum(s.today.records)}</b></span>
    <span class="stat">${T("累计调用")}<b>${fmtNum(s.total.calls)}</b></span><span class="stat">${T("累计记录")}<b>${fmtNum(s.total.records)}</b></span>
    <div class="cols">${volumeTable(T("按提供单位"), s.today.by_provider, dept)}${volumeTable(T("按申请单位"), s.today.by_consumer, dept)}${volumeTable(T("按主题"), s.today.by_topic, topic)}</div></div>`);
}
async function loadEntries() {
  const p = new URLSearchParams({after: S.auditAfter, limit: 50});
  for (const [id, name] of [["au-consumer", "consumer"], ["au-provider", "provider"], ["au-topic", "resource_code"], ["au-rid", "request_id"], ["au-outcome", "outcome"]]) {
    if ($(id).value.trim()) p.set(name, $(id).value.trim());
  }
  const page = await api("auditEntries", {q: p});
  S.auditNext = page.next_after;
  const rows = page.entries.map((e) => html`<tr data-rid="${e.request_id}"><td>${e.seq}</td><td class="nowrap">${fmtTime(e.at)}</td><td><code>${e.request_id}</code></td><td>${codeText("audit_kind", e.kind)}</td>
      <td>${dept(e.consumer)}</td><td>${e.provider ? dept(e.provider) : ""}</td><td><code>${e.resource_code || ""}</code></td>
      <td class="small">${e.items.join(", ")}</td><td>${caseText(e.case)}</td><td class="num">${e.records}</td>
      <td><span class="tag ${e.outcome === "ok" ? "ok" : "bad"}" title="${e.outcome}">${codeText("error", e.outcome)}</span> <code class="small">${e.outcome === "ok" ? e.status : e.outcome}</code></td>
      <td class="num">${e.latency_ms.toFixed(1)} ms</td><td><code title="${e.hash}">${e.hash.slice(0, 10)}…</code></td></tr>`);
  put("audit-list", html`<p class="muted small">${T("按哈希链顺序（seq）")}；${S.auditAfter ? T("从 seq {s} 之后", {s: S.auditAfter}) : T("从头")}，${T("{n} 条", {n: page.entries.length})}${page.next_after ? `，${T("还有更多")}` : ""}。</p>
    ${table(["seq", T("时间"), T("请求编号"), T("类型"), T("申请单位"), T("提供单位"), T("主题"), T("信息项"), T("业务事项"), html`<th scope="col" class="num">${T("记录")}</th>`, T("结果"), html`<th scope="col" class="num">${T("耗时")}</th>`, "hash"], rows, T("暂无审计记录：在“数据交换”中做一次查询。"), 'id="audit-table"')}`);
}
function caseText(c) {
  if (!c) return "";
  try { return decodeURIComponent(c); } catch (e) { return c; }
}
async function verifyChain() {
  const r = await api("auditVerify");
  put("verify-result", r.ok
    ? html`<span class="tag ok">${T("完整")}</span> ${T("共 {n} 条，最后 seq {s}", {n: r.entries, s: r.last_seq})}`
    : html`<span class="tag bad">${T("异常")} ${r.problem}</span> ${T("第一个问题 seq {s}：{m}", {s: r.first_bad_seq, m: r.message})}`);
}

// --- platform clock --------------------------------------------------------------------------

async function loadPlatform() {
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
async function advance(by) {
  const c = await api("advance", {json: {by}});
  await loadPlatform();
  notice(T("平台时钟已推进 {by}，现在 {t}（北京）。", {by, t: fmtTime(c.now)}));
  refreshBadges();
}

// --- members and the change feed -------------------------------------------------------------

async function loadDepartments() {
  await loadDepts();
  const units = Object.values(S.depts);
  const rows = units.map((d) => html`<tr><td><code>${d.code}</code></td><td>${d.name}</td><td>${codeText("kind", d.kind)}</td><td><code>${d.credit_code || ""}</code></td>
    <td>${d.base_url ? html`<code>${d.base_url}</code>` : html`<span class="muted">${T("未接入接口")}</span>`}</td></tr>`);
  put("depts-box", html`<h2>${T("接入单位（{n}）", {n: units.length})}</h2>
    ${table([T("代码"), T("名称"), T("类别"), T("统一社会信用代码"), T("接口地址")], rows, T("无"), 'id="depts-table"')}`);
}

let feedCursor = 0, feedRunning = false;
async function startFeed() {
  if (feedRunning) return;
  feedRunning = true;
  const gen = S.gen;
  put("feed", table(["#", T("时间"), T("事件"), T("资源代码"), T("版本"), T("操作者"), T("变更")], [], T("暂无变更。"), 'id="feed-table"'));
  while (feedRunning && gen === S.gen) {
    try {
      const page = await api("changes", {q: {after: feedCursor, limit: 200, wait: 20}});
      const body = document.querySelector("#feed-table tbody");
      if (page.changes.length) body.querySelector("tr.empty")?.remove();
      for (const c of page.changes) {
        const tr = document.createElement("tr");
        tr.innerHTML = toHTML(html`<td>${c.cursor}</td><td>${fmtTime(c.at)}</td><td>${codeText("change_kind", c.kind)}</td><td><code>${c.resource_code}</code></td><td>${c.version}</td><td>${dept(c.by)}</td><td>${changesText(c.changes)}</td>`);
        body.prepend(tr);
      }
      feedCursor = page.next_cursor;
    } catch (e) { if (!(e instanceof Stale)) showError(e); feedRunning = false; }
  }
}

// --- navigation helpers and event wiring -----------------------------------------------------

async function gotoApp(id, pane) {
  await activate(pane === "review" ? "review" : "applications");
  await openApp(id, pane === "review" ? "review" : "apps");
}
async function gotoGrant(id) { await activate("grants"); await openGrant(id); }
async function gotoDispute(id) { await activate("disputes"); await openDispute(id); }
async function gotoAudit(el) {
  switchTab("audit");
  $("au-rid").value = el.dataset.rid || "";
  $("au-topic").value = el.dataset.topic || "";
  $("au-consumer").value = el.dataset.consumer || "";
  await loadAudit();
}

async function signIn(form) {
  S.key = form.elements.key.value.trim();
  localStorage.setItem("exchange.key", S.key);
  await identify();
  await activate(S.tab);
}
async function signOut() {
  S.key = "";
  localStorage.removeItem("exchange.key");
  await identify();
  switchTab("catalog");
}
async function toggleLang() {
  setLang(lang() === "en" ? "zh" : "en");
  renderStatic();
  renderIdentity();
  renderTabs();
  await refreshClock();
  await refreshBadges();
  if (key()) await activate(S.tab);
}

// What the subscriptions view (subscriptions.js) needs of the page.
const subsCtx = () => ({api, T, deptName, notice});
// What the libraries view (libraries.js) needs of the page.
const libsCtx = () => ({api, T, deptName, notice, operator: () => Boolean(S.me && S.me.operator)});

const ACTIONS = {
  "credit-lists": () => checkLists({api, T}),
  "lib-gather": (el) => startGathering(libsCtx(), el),
  "lib-page": (el) => pageConflicts(libsCtx(), el),
  "lib-resolve": (el) => openResolve(libsCtx(), el),
  "tab": (el) => activate(el.dataset.tab),
  "sub-reload": () => loadSubscriptions(subsCtx()),
  "sub-dead": (el) => loadDeadLetters(subsCtx(), el.dataset.id),
  "sub-retry": (el) => settleDeadLetters(subsCtx(), el.dataset.id, "retry"),
  "sub-discard": (el) => settleDeadLetters(subsCtx(), el.dataset.id, "discard"),
  "close-error": () => showError(),
  "topic": (el) => detail(el.dataset.code),
  "open-app": (el) => openApp(el.dataset.id, el.dataset.pane),
  "reload-apps": (el) => loadApps(el.dataset.role),
  "goto-app": (el) => gotoApp(el.dataset.id, el.dataset.pane),
  "goto-grant": (el) => gotoGrant(el.dataset.id),
  "goto-dispute": (el) => gotoDispute(el.dataset.id),
  "goto-exchange": async (el) => { switchTab("exchange"); await loadExchange(el.dataset.topic); },
  "goto-audit": (el) => gotoAudit(el),
  "open-dispute": (el) => openDispute(el.dataset.id),
  "reload-disputes": () => loadDisputes(),
  "open-grant": (el) => openGrant(el.dataset.id),
  "reload-grants": () => loadGrants(),
  "sample-keys": () => sampleKeys(),
  "audit-search": () => { S.auditAfter = 0; return loadEntries(); },
  "audit-next": () => { if (S.auditNext) { S.auditAfter = S.auditNext; return loadEntries(); } notice(T("已是最后一页。")); return null; },
  "verify": () => verifyChain(),
  "advance": (el) => advance(el.dataset.by),
  "sign-out": () => signOut(),
  "lang": () => toggleLang(),
  "search": () => { offset = 0; return search(); },
  "prev": () => { offset = Math.max(0, offset - limit); return search(); },
  "next": () => { offset += limit; return search(); },
};
const FORMS = {
  "credit-search": (form) => searchCredit({api, T}, form),
  "lib-conflicts": (form) => filterConflicts(libsCtx(), form),
  "lib-resolve": (form) => resolveConflict(libsCtx(), form),
  "apply": submitApply, "approve": submitApprove, "reject": submitReject, "dispute": submitDispute,
  "message": submitMessage, "decide": submitDecide, "revoke": submitRevoke, "check": submitCheck,
  "query": submitQuery, "advance": (form) => advance(form.elements.by.value.trim()),
  "open-dispute": (form) => openDispute(form.elements.id.value), "sign-in": signIn,
  "identity": (form) => { if (form.elements.key.value.trim() !== S.key) setKey(form.elements.key.value.trim()); },
  "search": () => { offset = 0; return search(); },
  "lic-verify": (form) => verifyLicence({api, T}, form),
  "verify-claims": (form) => verifyClaims(subsCtx(), form),
};

function act(el, ev) {
  showError();
  guard(ACTIONS[el.dataset.act](el, ev));
}
document.addEventListener("click", (ev) => {
  const el = ev.target.closest("[data-act]");
  if (!el || ev.target.closest("form") && el.tagName === "TR") return;
  if (el.tagName === "BUTTON") ev.preventDefault();
  act(el, ev);
});
document.addEventListener("keydown", (ev) => {
  // Rows that open something are reachable with Tab and opened with Enter or Space.
  const row = ev.target.closest && ev.target.closest("tr[data-act]");
  if (row && ev.target === row && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); act(row, ev); return; }
  // The tab list: arrow keys move between tabs (WAI-ARIA tabs pattern), Home / End to the ends.
  const tab = ev.target.closest && ev.target.closest('#tabs [role="tab"]');
  if (tab && ["ArrowLeft", "ArrowRight", "Home", "End"].includes(ev.key)) {
    const all = [...$("tabs").children];
    let i = all.indexOf(tab);
    i = ev.key === "Home" ? 0 : ev.key === "End" ? all.length - 1 : (i + (ev.key === "ArrowRight" ? 1 : -1) + all.length) % all.length;
    all[i].focus();
    ev.preventDefault();
    act(all[i], ev);
  }
});
document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (!form.dataset.form || !FORMS[form.dataset.form]) return;
  ev.preventDefault();
  showError();
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  guard(FORMS[form.dataset.form](form)).then(() => buttons.forEach((b) => { b.disabled = false; }));
});
document.addEventListener("change", (ev) => {
  if (ev.target.id === "x-topic") guard(renderExchangeItems(ev.target.value));
  else if (ev.target.id === "role") onRoleChange();
  else if (ev.target.id === "key" && DEMO) setKey(ev.target.value.trim());
});

// Reads #key=…&keys=…&tab=…&q=…&topic=…&app=…&dispute=…&grant=… (see index.html).
function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  if (!DEMO) return p;  // keys travel in the address only in demonstrations
  for (const k of (p.get("keys") || "").split(",").filter(Boolean).reverse()) {
    const code = codeOfKey(k);
    remember(k, code, code === "operator" ? T("平台运营方") : deptName(code));
  }
  if (p.get("key")) { S.key = p.get("key"); localStorage.setItem("exchange.key", S.key); }
  // Keys leave the address bar at once, before anything is loaded or shown.
  if (p.get("key") || p.get("keys")) history.replaceState(null, "", "#tab=" + encodeURIComponent(p.get("tab") || "catalog"));
  return p;
}

function renderStatic() {
  applyStatic();
  $("lang").textContent = lang() === "en" ? "中文" : "EN";
  put("apps-filter", filterBar("apps", "consumer"));
  put("review-filter", filterBar("review", "provider"));
  put("grants-filter", grantsFilter());
  put("audit-filter", auditFilter());
}

async function start() {
  setLang(lang());
  renderStatic();
  S.key = localStorage.getItem("exchange.key") || "";
  const p = readHash();
  if (p.get("q")) $("q").value = p.get("q");
  const wanted = p.get("tab") || "catalog";
  renderIdentity();
  renderTabs();
  if (!key()) { switchTab("catalog"); return; }
  await identify();
  await activate(visibleTabs().some(([id]) => id === wanted) ? wanted : "catalog");
  if (p.get("topic")) await detail(p.get("topic"));
  if (p.get("app")) await openApp(p.get("app"), S.tab === "review" ? "review" : "apps");
  if (p.get("dispute")) await openDispute(p.get("dispute"));
  if (p.get("grant")) await openGrant(p.get("grant"));
  if (!clockTimer) clockTimer = setInterval(refreshClock, 60000);
}
let clockTimer = 0;
guard(start());
// A link pasted into an open portal (#key=…&tab=…) takes effect without a reload.
window.addEventListener("hashchange", () => {
  const p = new URLSearchParams(location.hash.slice(1));
  if (!p.get("key") && !p.get("keys") && !p.get("topic") && !p.get("app") && !p.get("dispute") && !p.get("grant") && !p.get("q")) return;
  guard(start());
});

