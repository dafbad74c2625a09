// The portal's core: its state, the API table and the one function that calls it, errors
// and notices, and the names of departments, topics and items every view shows.
import {$, html, put, fmtTime, T, codeText} from "/ui.js";

// --- state, API and errors -------------------------------------------------------------------

// Demo deployments list demo departments and accept keys in the address; otherwise a
// department signs in once and its key is never shown (the server says which, in a <meta>).
export const DEMO = document.querySelector('meta[name="exchange-demo"]')?.content !== "false";
// Departments worth offering in the demo picker: the banner's demo keys and the core providers.
export const DEMO_UNITS = [["mzj", "市民政局"], ["gaj", "市公安局"], ["scjgj", "市市场监管局"], ["rsj", "市人力资源社会保障局"],
  ["gjj", "市住房公积金管理中心"], ["swj", "市税务局"], ["ghzyj", "市规划和自然资源局"], ["ybj", "市医保局"],
  ["wjw", "市卫生健康委"], ["zsj", "市政务服务数据管理局"]];

export const S = {me: null, clock: null, depts: {}, topics: {}, tab: "catalog", auditAfter: 0, gen: 0, key: ""};

export class ApiError extends Error {
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
export class NoIdentity extends Error { constructor() { super(T("请先在“身份”中选择身份或粘贴 key。")); this.code = "no_identity"; } }
// An answer that arrived after the identity changed: dropped, it belongs to someone else.
export class Stale extends Error {}

// Loads that each redraw one pane (a list, its counts): newest(pane) at a load's start
// gives a check that is false once a newer load of the same pane has started. On a busy
// server answers come out of order, and an older one would draw over the newer (and set
// paging state from it); each loader drops such an answer.
const loads = new Map();
export function newest(pane) {
  const mine = (loads.get(pane) || 0) + 1;
  loads.set(pane, mine);
  return () => loads.get(pane) === mine;
}

export const key = () => S.key;
export const isOperator = () => Boolean(S.me && S.me.operator);

// Every endpoint the portal calls, spelled as in the OpenAPI schema (tests/web checks each
// one is there, so renaming a route breaks a test rather than the page). Nothing else in
// these scripts builds an /api/ path.
export const API = {
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
export function rc(code) { const [front, seq] = String(code).split("/"); return {front, seq}; }
export function url(name, params = {}, query = null) {
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
export async function api(name, opts = {}) {
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

export function errorBlock(e) {
  if (e instanceof NoIdentity) return html`<b>${codeText("error", "no_identity")}</b> ${e.message}`;
  if (!(e instanceof ApiError)) return html`<b>${T("错误")}</b> ${String((e && e.message) || e)}`;
  return html`<b>${e.status} ${codeText("error", e.code)} <code>${e.code}</code></b> ${e.message}
    ${e.requestId ? html`<span class="muted small"> · ${T("请求编号")} <code>${e.requestId}</code></span>` : ""}
    ${e.detail ? html`<div class="small muted">${T("详情")}: ${detailText(e.detail)}</div>` : ""}`;
}
export function showError(e) {
  if (!e) { put("error", ""); return; }
  if (e instanceof Stale) return;
  // Shown on the page; only a fault of the page itself goes to the console.
  if (!(e instanceof ApiError) && !(e instanceof NoIdentity)) console.error(e);
  put("error", html`<button class="close" data-act="close-error" aria-label="${T("关闭")}" title="${T("关闭")}">×</button>${errorBlock(e)}`);
  window.scrollTo({top: 0, behavior: "smooth"});
}
let noticeTimer = 0;
// The notice of one identity goes with it (see portal.js resetPanes).
export function clearNotice() { clearTimeout(noticeTimer); }
export function notice(content) {
  put("notice", content);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => put("notice", ""), 8000);
}
export const guard = (p) => Promise.resolve(p).then(() => undefined, showError);

// Key/value details (event details, error details, catalog changes) as words, not JSON.
export function valueText(v) {
  if (v === null || v === undefined || v === "") return "—";
  if (Array.isArray(v)) return v.map(valueText).join(T("、"));
  if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${k}: ${valueText(x)}`).join("；");
  return String(v);
}
const DETAIL_WORDS = {items: "信息项", rejected: "未通过", grant_id: "授权", valid_until: "有效期至", daily_quota: "每日限额", decision: "决定",
  dispute_id: "争议", reason: "理由", side: "", provider: "提供单位", deadline: "审核期限"};
export function detailText(d) {
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
export function changesText(c) {
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
export async function loadDepts() {
  try {
    const units = await api("departments");
    S.depts = Object.fromEntries(units.map((d) => [d.code, d]));
  } catch (e) { if (e instanceof Stale) throw e; S.depts = {}; }
}
export function deptName(code) {
  if (code === "operator" || code === "platform") return T("平台运营方");
  const d = S.depts[code];
  if (d) return d.short_name || d.name;
  const demo = DEMO_UNITS.find(([c]) => c === code);
  return demo ? demo[1] : code;
}
export const dept = (code) => html`${deptName(code)}<code class="en">${code}</code>`;

export async function topicOf(code) {
  if (!S.topics[code]) S.topics[code] = await api("topic", {p: rc(code)});
  return S.topics[code];
}
export function itemName(topic, field) {
  const it = topic && topic.items.find((i) => i.field === field);
  return it ? it.name : "";
}

export async function refreshClock() {
  if (!key()) return;
  try {
    const c = await api("clock");
    S.clock = c;
    const days = c.offset_seconds / 86400;
    $("clock").textContent = T("平台时间 {t}（北京）", {t: fmtTime(c.now)}) + (c.offset_seconds ? T(" · 已推进 {d} 天", {d: days.toFixed(days % 1 ? 1 : 0)}) : "");
  } catch (e) { $("clock").textContent = ""; }
}
export function platformNow() { return S.clock ? new Date(S.clock.now) : new Date(); }
export function platformToday() { return S.clock ? S.clock.today : new Date().toISOString().slice(0, 10); }

export async function refreshBadges() {
  const b = document.querySelector('#tabs [data-tab="review"] .badge');
  if (!b) return;
  b.textContent = "";
  if (!S.me) return;
  try {
    const page = await api("applications", {q: {role: "provider", status: "pending_review", limit: 1}});
    b.textContent = page.total ? String(page.total) : "";
  } catch (e) { b.textContent = ""; }
}
