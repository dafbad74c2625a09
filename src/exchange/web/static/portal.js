// exchange portal: one page over the public API, authenticated by the key the user pastes in.
// Everything rendered goes through html`` (which escapes every interpolated value) or
// textContent. Extension hooks: window.EXCHANGE_TABS = [[id, label], ...] (with their own
// <section id="tab-ID">) and window.EXCHANGE_TOPIC_ACTIONS(topic, element).
"use strict";

// --- rendering helpers -----------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
class Raw { constructor(s) { this.s = s; } }
function toHTML(v) {
  if (v instanceof Raw) return v.s;
  if (Array.isArray(v)) return v.map(toHTML).join("");
  if (v === null || v === undefined || v === false) return "";
  return esc(v);
}
function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += toHTML(values[i]) + strings[i + 1];
  return new Raw(out);
}
function put(el, content) { (typeof el === "string" ? $(el) : el).innerHTML = toHTML(content); }

const SHARING = {unconditional: "无条件共享", conditional: "有条件共享", not_shared: "不予共享"};
const OUTCOME = {pending: "待审核", granted: "已授权", refused: "不予共享", rejected: "已退回"};
const APP_STATUS = {pending_review: "待审核", approved: "已通过", partially_approved: "部分通过", returned: "已退回", disputed: "争议中"};
const GRANT_STATUS = {active: "有效", suspended: "暂停", revoked: "已撤销", expired: "已过期"};
const SCOPE = {administrative_basis: "作为行政依据", work_reference: "工作参考", data_verification: "数据校核", business_collaboration: "业务协同"};
const DELIVERY = {interface: "接口查询", bulk: "批量交换", subscription: "订阅"};
const DECISION = {grant: "全部授权", partial: "部分授权", uphold: "维持拒绝"};
const DISPUTE_STATUS = {open: "协调中", decided: "已决定"};
const TOPIC_STATUS = {published: "已发布", retired: "已废置"};
const EVENT = {submitted: "提交申请", review_requested: "送审（待提供单位审核）", approved: "审核通过", partially_approved: "部分通过", rejected: "退回", returned: "退回",
  disputed: "提起争议", dispute_opened: "提起争议", dispute_decided: "协调决定", decided: "协调决定", revoked: "撤销授权", granted: "授权"};
// Departments worth offering in the role picker: the banner's demo keys and the core providers.
const DEMO_UNITS = [["mzj", "市民政局"], ["gaj", "市公安局"], ["scjgj", "市市场监管局"], ["rsj", "市人力资源社会保障局"],
  ["gjj", "市住房公积金管理中心"], ["swj", "市税务局"], ["ghzyj", "市规划和自然资源局"], ["ybj", "市医保局"],
  ["wjw", "市卫生健康委"], ["zsj", "市政务服务数据管理局"]];

const label = (map, v) => (v === null || v === undefined ? "" : html`${map[v] || v}<code class="en">${v}</code>`);
const tag = (v, map, cls) => html`<span class="tag ${cls || v}" title="${v}">${(map && map[v]) || v} <small>${v}</small></span>`;
const TZ = "Asia/Shanghai";
function fmtTime(s) {
  if (!s) return "";
  return new Date(s).toLocaleString("zh-CN", {timeZone: TZ, hour12: false, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"});
}
function addDays(isoDay, n) {
  const d = new Date(isoDay + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

// --- state, API and errors -------------------------------------------------------------------

const S = {me: null, clock: null, depts: {}, topics: {}, tab: "catalog", auditAfter: 0, auditPrev: []};

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

function key() { return $("key").value.trim(); }

// Every endpoint the portal calls, spelled as in the OpenAPI schema (tests/web checks each
// one is there, so renaming a route breaks a test rather than the page). Nothing else in this
// file builds an /api/ path.
const API = {
  clock: "GET /api/v1/clock",
  advance: "POST /api/v1/clock/advance",
  departments: "GET /api/v1/departments",
  me: "GET /api/v1/departments/me",
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
  auditEntries: "GET /api/v1/audit/entries",
  auditStats: "GET /api/v1/audit/stats",
  auditVerify: "GET /api/v1/audit/verify",
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
  const method = API[name].split(" ")[0];
  const headers = Object.assign({"Authorization": "Bearer " + key()}, opts.headers || {});
  const init = {method, headers};
  if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(opts.json); }
  const resp = await fetch(url(name, opts.p || {}, opts.q), init);
  const rid = resp.headers.get("x-request-id") || "";
  if (opts.text && resp.ok) return {text: await resp.text(), headers: resp.headers};
  const body = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, body, rid);
  return body;
}

function errorBlock(e) {
  if (!(e instanceof ApiError)) return html`<b>错误</b> ${String((e && e.message) || e)}`;
  return html`<b>${e.status} <code>${e.code}</code></b> ${e.message}
    ${e.requestId ? html`<span class="muted small"> · request id <code>${e.requestId}</code></span>` : ""}
    ${e.detail ? html`<div class="small muted">detail: <code>${JSON.stringify(e.detail)}</code></div>` : ""}`;
}
function showError(e) {
  if (!e) { put("error", ""); return; }
  console.error(e);
  put("error", html`<button class="close" data-act="close-error" title="关闭">×</button>${errorBlock(e)}`);
  window.scrollTo({top: 0, behavior: "smooth"});
}
let noticeTimer = 0;
function notice(content) {
  put("notice", content);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => put("notice", ""), 8000);
}
const guard = (p) => Promise.resolve(p).then(() => undefined, showError);

// Departments: names for codes everywhere.
async function loadDepts() {
  try {
    const units = await api("departments");
    S.depts = Object.fromEntries(units.map((d) => [d.code, d]));
  } catch (e) { S.depts = {}; }
}
function deptName(code) {
  if (code === "operator") return "平台运营方";
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
  if (!k) return;
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

function renderRole() {
  const recent = recentKeys();
  const current = key();
  const known = new Set(recent.map((r) => r.code));
  const opts = [html`<option value="">— 选择身份 —</option>`];
  if (recent.length) {
    opts.push(html`<optgroup label="最近使用的 key (recent keys)">${recent.map((r, i) =>
      html`<option value="key:${i}" ${r.key === current ? "selected" : ""}>${r.code === "operator" ? "平台运营方" : r.name} (${r.code})</option>`)}</optgroup>`);
  }
  const missing = DEMO_UNITS.filter(([c]) => !known.has(c));
  if (missing.length) {
    opts.push(html`<optgroup label="演示部门（粘贴其 key）">${missing.map(([c]) =>
      html`<option value="dept:${c}">${deptName(c)} (${c}) — 粘贴 key…</option>`)}</optgroup>`);
  }
  if (!known.has("operator")) opts.push(html`<option value="dept:operator">平台运营方 (operator) — 粘贴 key…</option>`);
  if (current && !recent.some((r) => r.key === current)) opts.push(html`<option value="" selected>（当前 key）</option>`);
  opts.push(html`<option value="forget">从列表移除当前 key</option>`);
  put("role", opts);
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
      ? "请粘贴 operator key（启动横幅 Operator key，或 .exchange/operator.key）"
      : `请粘贴 ${deptName(code)} (${code}) 的 key：启动横幅中的 Demo key，或 exchange.security.demo_key(operator_key, "${code}")`;
    $("key").select();
    $("key").focus();
  } else if (v === "forget") {
    forget(key());
    renderRole();
  }
}

function setKey(k) {
  $("key").value = k;
  localStorage.setItem("exchange.key", k);
  guard(identify().then(() => activate(S.tab)));
}

async function identify() {
  showError();
  S.me = null;
  S.topics = {};
  $("role-hint").textContent = "";
  const k = key();
  if (!k) { $("who").textContent = "未登录"; renderRole(); return; }
  try {
    const me = await api("me");
    S.me = {code: me.code, name: me.short_name || me.name, operator: false};
  } catch (e) {
    if (e.code === "department_not_found") S.me = {code: "operator", name: "平台运营方", operator: true};
    else { $("who").textContent = "key 无效"; renderRole(); throw e; }
  }
  remember(k, S.me.code, S.me.name);
  await loadDepts();
  $("who").textContent = `${S.me.name} (${S.me.code})`;
  renderRole();
  await refreshClock();
  await refreshBadges();
}

async function refreshClock() {
  if (!key()) return;
  try {
    const c = await api("clock");
    S.clock = c;
    const days = c.offset_seconds / 86400;
    $("clock").textContent = `平台时间 ${fmtTime(c.now)}（北京）${c.offset_seconds ? ` · 已推进 ${days.toFixed(days % 1 ? 1 : 0)} 天` : ""}`;
  } catch (e) { $("clock").textContent = ""; }
}
function platformNow() { return S.clock ? new Date(S.clock.now) : new Date(); }
function platformToday() { return S.clock ? S.clock.today : new Date().toISOString().slice(0, 10); }

async function refreshBadges() {
  const b = document.querySelector('nav button[data-tab="review"] .badge');
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
  ["platform", "平台时钟", () => loadPlatform()],
  ["departments", "接入单位", () => loadDepartments()],
  ["changes", "目录变更", () => startFeed()],
];

function renderTabs() {
  const all = TABS.concat((window.EXCHANGE_TABS || []).map(([id, text]) => [id, text, null]));
  put("tabs", all.map(([id, text]) => html`<button data-tab="${id}" data-act="tab">${text}${id === "review" ? html`<span class="badge"></span>` : ""}</button>`));
}

function switchTab(id) {
  S.tab = id;
  for (const b of $("tabs").children) b.classList.toggle("on", b.dataset.tab === id);
  for (const s of document.querySelectorAll("main > section")) s.classList.toggle("on", s.id === "tab-" + id);
  history.replaceState(null, "", "#tab=" + encodeURIComponent(id));
}
function activate(id) {
  switchTab(id);
  const t = TABS.find(([tid]) => tid === id);
  if (t && key()) return t[2]();
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
  $("total").textContent = page.total ? `共 ${page.total} 条，第 ${offset + 1}–${Math.min(offset + limit, page.total)} 条` : "共 0 条";
  put("results", page.items.map((t) => html`<tr class="click" data-act="topic" data-code="${t.resource_code}">
    <td><code>${t.resource_code}</code></td><td>${t.name}</td><td>${dept(t.provider)}</td>
    <td>${tag(t.sharing.type, SHARING)}</td><td>${t.resource_type}</td><td>${tag(t.status, TOPIC_STATUS)}</td></tr>`));
}

async function detail(code) {
  const t = await api("topic", {p: rc(code)});
  S.topics[code] = t;
  for (const tr of $("results").children) tr.classList.toggle("sel", tr.dataset.code === code);
  const items = t.items.map((i) => html`<tr><td><code>${i.field}</code>${i.is_key ? html` <span class="tag published">键</span>` : ""}</td><td>${i.name}</td><td>${i.data_type}</td>
    <td>${tag(i.sharing_type, SHARING)}</td><td>${i.element || ""}${i.element ? (i.is_source ? " (源)" : " (转共享)") : ""}</td></tr>`);
  const hist = (t.history || []).map((h) => html`<li>v${h.version} · ${fmtTime(h.changed_at)} · ${h.changed_by} · ${h.reason} <code>${JSON.stringify(h.changes)}</code></li>`);
  put("detail", html`<div class="card"><h3>${t.name} ${tag(t.status, TOPIC_STATUS)}</h3>
    <p><code>${t.resource_code}</code> · ${dept(t.provider)} · ${t.classification} / ${t.group} · ${t.resource_type} · ${t.format} · 更新周期 ${t.update_cycle} · v${t.version}</p>
    <p>${t.abstract}</p>
    <p>共享：${tag(t.sharing.type, SHARING)} ${t.sharing.conditions || ""} ${t.sharing.legal_basis ? html`<b>法律依据：</b>${t.sharing.legal_basis}` : ""}</p>
    <p class="small muted">使用范围：${(t.sharing.usage_scopes || []).map((s) => label(SCOPE, s))} · 共享方式：${(t.sharing.methods || []).join(", ")}</p>
    ${t.retire_reason ? html`<p class="err">废置原因：${t.retire_reason}</p>` : ""}
    <table><thead><tr><th>字段</th><th>信息项</th><th>类型</th><th>共享类型</th><th>数据元</th></tr></thead><tbody>${items}</tbody></table>
    <h4>版本历史</h4><ul>${hist}</ul>
    <div id="topic-actions" data-code="${t.resource_code}"></div><div id="topic-hook"></div></div>`);
  renderApplyForm(t, $("topic-actions"));
  if (window.EXCHANGE_TOPIC_ACTIONS) window.EXCHANGE_TOPIC_ACTIONS(t, $("topic-hook"));
}

function renderApplyForm(t, el) {
  if (t.status !== "published" || !S.me) { put(el, ""); return; }
  if (!S.me.operator && S.me.code === t.provider) {
    put(el, html`<p class="muted">这是本单位提供的资源，无需申请。</p>`);
    return;
  }
  const allowed = new Set(t.sharing.usage_scopes || []);
  const scopes = Object.keys(SCOPE).map((s) => html`<option value="${s}" ${s === (t.sharing.usage_scopes || [])[0] ? "selected" : ""}>${SCOPE[s]} (${s})${allowed.has(s) ? " ✓ 目录允许" : ""}</option>`);
  const units = Object.values(S.depts).filter((d) => d.code !== t.provider).sort((a, b) => a.code.localeCompare(b.code));
  put(el, html`<div class="card form"><h3>申请共享 <span class="en">POST /api/v1/applications</span></h3>
    <form data-form="apply" data-code="${t.resource_code}"><div class="grid">
      ${S.me.operator ? html`<label class="req">代为申请单位 consumer</label><select name="consumer" required><option value="">—</option>${units.map((d) => html`<option value="${d.code}">${d.short_name || d.name} (${d.code})</option>`)}</select>` : ""}
      <label class="req">信息项 items</label><div class="items">${t.items.map((i) => html`<label><input type="checkbox" name="items" value="${i.field}" checked> ${i.name} <code>${i.field}</code> ${tag(i.sharing_type, SHARING)}</label>`)}</div>
      <label class="req">使用范围 purpose.scope</label><select name="scope">${scopes}</select>
      <label class="req">用途 purpose.text</label><input name="purpose" required size="60" value="居民家庭经济状况核对（最低生活保障审核）">
      <label class="req">履职依据 legal_function</label><input name="legal" required size="60" value="《社会救助暂行办法》第十一条">
      <label>有效期 validity</label><div><input type="date" name="valid_from" title="留空为今天 (platform today)"> 至 <input type="date" name="valid_until" required value="${addDays(platformToday(), 365)}"></div>
      <label>每日限额 daily_quota</label><div><input type="number" name="quota" min="1" value="1000" size="10"> <span class="muted small">条/天，留空为不限</span></div>
      <label>交付方式 delivery</label><select name="delivery">${Object.keys(DELIVERY).map((d) => html`<option value="${d}">${DELIVERY[d]} (${d})</option>`)}</select>
      <span></span><div><button class="primary">提交申请</button></div>
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
  put("apply-result", html`<div class="card"><h3>申请 #${app.id} 已提交 ${tag(app.status, APP_STATUS)}</h3>
    ${outcomeSummary(app)}${decisionsTable(app, t)}
    <div class="row"><button data-act="goto-app" data-id="${app.id}" data-pane="apps">在“我的申请”中查看</button>
    ${app.grant_id ? html`<button data-act="goto-grant" data-id="${app.grant_id}">查看授权 #${app.grant_id}</button>` : ""}</div></div>`);
  notice(html`申请 #${app.id} 已提交。`);
  refreshBadges();
}

// --- applications: consumer list, provider inbox, detail with review and dispute forms -------

function filterBar(pre, role) {
  const st = pre === "review" ? "pending_review" : "";
  return html`<select id="${pre}-status"><option value="">全部状态</option>${Object.keys(APP_STATUS).map((s) => html`<option value="${s}" ${s === st ? "selected" : ""}>${APP_STATUS[s]} (${s})</option>`)}</select>
    <label><input type="checkbox" id="${pre}-overdue"> 仅逾期 <span class="en">overdue=true</span></label>
    <input id="${pre}-topic" placeholder="资源代码 101001001/000001" size="22">
    <button data-act="reload-apps" data-role="${role}">刷新</button>`;
}

function counts(app) {
  const c = {};
  for (const d of app.decisions) c[d.outcome] = (c[d.outcome] || 0) + 1;
  return Object.keys(OUTCOME).filter((o) => c[o]).map((o) => html`<span class="tag ${o}" title="${o}">${OUTCOME[o]} ${c[o]}</span> `);
}
function deadlineCell(app) {
  if (!app.review_deadline) return html`<span class="muted">—</span>`;
  const pending = app.status === "pending_review";
  const left = (new Date(app.review_deadline) - platformNow()) / 86400000;
  let note = "";
  if (app.overdue) note = html` <span class="tag late">已逾期 overdue ${Math.abs(left).toFixed(1)} 天</span>`;
  else if (pending) note = html` <span class="muted small" title="日历日；期限本身按工作日计算">剩 ${left.toFixed(1)} 天</span>`;
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
  put(pre + "-list", html`<p class="muted small">共 ${page.total} 件${both ? "（运营方可见全部）" : ""}；审核期限按工作日计算，逾期以平台时钟为准。</p>
    <table><thead><tr><th>编号</th><th>主题</th>${both ? html`<th>申请单位</th><th>提供单位</th>` : html`<th>${role === "consumer" ? "提供单位" : "申请单位"}</th>`}
    <th>信息项结果</th><th>状态</th><th>提交时间</th><th>审核期限</th><th>授权 / 争议</th></tr></thead><tbody>
    ${page.items.map((a) => html`<tr class="click ${a.overdue ? "overdue" : ""}" data-act="open-app" data-id="${a.id}" data-pane="${pre}">
      <td>#${a.id}</td><td>${a.topic_name}<br><code>${a.topic}</code></td>
      ${both ? html`<td>${dept(a.consumer)}</td><td>${dept(a.provider)}</td>` : html`<td>${dept(a[other])}</td>`}
      <td>${counts(a)}</td><td>${tag(a.status, APP_STATUS)}</td><td class="nowrap">${fmtTime(a.submitted_at)}</td><td>${deadlineCell(a)}</td>
      <td>${a.grant_id ? html`授权 #${a.grant_id} ` : ""}${a.dispute_id ? html`<span class="tag disputed">争议 #${a.dispute_id}</span>` : ""}</td></tr>`)}
    </tbody></table>${page.items.length ? "" : html`<p class="muted">暂无${role === "consumer" ? "申请。可在“目录检索”中打开资源并提交申请" : "待审核的申请"}。</p>`}`);
}

function outcomeSummary(app) {
  const by = (o) => app.decisions.filter((d) => d.outcome === o);
  const granted = by("granted"), pending = by("pending"), refused = by("refused"), rejected = by("rejected");
  return html`<ul>
    ${granted.length ? html`<li>${tag("granted", OUTCOME)} ${granted.length} 项已授权${app.grant_id ? html`（授权 #${app.grant_id}）` : ""}：${granted.map((d) => html`<code>${d.field}</code> `)}</li>` : ""}
    ${pending.length ? html`<li>${tag("pending", OUTCOME)} ${pending.length} 项有条件共享，待 ${dept(app.provider)} 审核，期限 <b>${fmtTime(app.review_deadline)}</b>（10 个工作日）${app.overdue ? html` <span class="tag late">已逾期 overdue</span>` : ""}</li>` : ""}
    ${refused.length ? html`<li>${tag("refused", OUTCOME)} ${refused.length} 项不予共享：${refused.map((d) => html`<code>${d.field}</code> `)}<br><span class="small">${refused[0].reason || ""}</span></li>` : ""}
    ${rejected.length ? html`<li>${tag("rejected", OUTCOME)} ${rejected.length} 项被退回：${rejected.map((d) => html`<code>${d.field}</code> `)}</li>` : ""}
  </ul>`;
}

function decisionsTable(app, t) {
  return html`<table><thead><tr><th>字段</th><th>信息项</th><th>共享类型</th><th>结果</th><th>理由 / 法律依据</th></tr></thead><tbody>
    ${app.decisions.map((d) => html`<tr><td><code>${d.field}</code></td><td>${itemName(t, d.field)}</td><td>${tag(d.sharing_type, SHARING)}</td><td>${tag(d.outcome, OUTCOME)}</td><td>${d.reason || ""}</td></tr>`)}
  </tbody></table>`;
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
  const events = (app.events || []).map((ev) => html`<li><span class="nowrap">${fmtTime(ev.at)}</span> · ${dept(ev.actor)} · <b>${EVENT[ev.kind] || ev.kind}</b> <code class="en">${ev.kind}</code>
    ${ev.reason ? html` · 理由：${ev.reason}` : ""} ${Object.keys(ev.detail || {}).length ? html`<code>${JSON.stringify(ev.detail)}</code>` : ""}</li>`);
  const reviewForms = canReview ? html`<div class="cols">
    <div class="card form"><h4>审核通过 <span class="en">POST …/approve</span></h4>
      <form data-form="approve" data-id="${app.id}" data-pane="${pane}"><div class="grid">
        <label>通过的信息项</label><div class="items">${pending.map((d) => html`<label><input type="checkbox" name="items" value="${d.field}" checked> ${itemName(t, d.field)} <code>${d.field}</code></label>`)}</div>
        <label>有效期至</label><div><input type="date" name="valid_until" value="${app.valid_until}" max="${app.valid_until}"> <span class="small muted">不晚于申请</span></div>
        <label>每日限额</label><div><input type="number" name="quota" min="1" ${app.daily_quota ? html`max="${app.daily_quota}" value="${app.daily_quota}"` : ""}> <span class="small muted">不高于申请（${app.daily_quota || "不限"}）</span></div>
        <label>理由</label><input name="reason" size="40" placeholder="部分通过（去掉信息项）时必填">
        <span></span><div><button class="primary">通过</button></div></div></form></div>
    <div class="card form"><h4>退回 <span class="en">POST …/reject</span></h4>
      <form data-form="reject" data-id="${app.id}" data-pane="${pane}">
        <p class="small muted">退回全部待审信息项；依规定必须说明理由。</p>
        <label class="req">退回理由 reason</label><br><textarea name="reason" rows="3" cols="44" required placeholder="如：申请用途不属于本资源的共享条件"></textarea><br>
        <button class="danger">退回</button></form></div></div>` : "";
  const disputeForm = canDispute ? html`<div class="card form"><h4>提起争议协调 <span class="en">POST …/dispute</span></h4>
    <form data-form="dispute" data-id="${app.id}"><div class="grid">
      <label>争议信息项</label><div class="items">${refused.map((d) => html`<label><input type="checkbox" name="items" value="${d.field}" checked> ${itemName(t, d.field)} <code>${d.field}</code> ${tag(d.outcome, OUTCOME)}</label>`)}</div>
      <label class="req">理由 reason</label><textarea name="reason" rows="3" cols="50" required placeholder="为何履职确需该数据"></textarea>
      <span></span><div><button class="primary">提起争议</button></div></div></form></div>` : "";
  put(pane + "-detail", html`<div class="card"><h3>申请 #${app.id} · ${app.topic_name} <code>${app.topic}</code> ${tag(app.status, APP_STATUS)} ${app.overdue ? html`<span class="tag late">逾期 overdue</span>` : ""}</h3>
    <div class="grid">
      <label>申请单位 → 提供单位</label><div>${dept(app.consumer)} → ${dept(app.provider)}</div>
      <label>用途</label><div>${label(SCOPE, app.purpose.scope)} · ${app.purpose.text}</div>
      <label>履职依据</label><div>${app.legal_function}</div>
      <label>有效期</label><div>${app.valid_from} 至 ${app.valid_until}</div>
      <label>每日限额 · 交付</label><div>${app.daily_quota ? html`${app.daily_quota} 条/天` : "不限"} · ${label(DELIVERY, app.delivery)}</div>
      <label>提交 · 审核期限</label><div>${fmtTime(app.submitted_at)} · ${deadlineCell(app)}</div>
      ${app.reviewed_at ? html`<label>审核</label><div>${fmtTime(app.reviewed_at)} · ${dept(app.reviewed_by)} ${app.review_reason ? html`· 理由：${app.review_reason}` : ""}</div>` : ""}
    </div>
    <h4>逐项结果</h4>${outcomeSummary(app)}${decisionsTable(app, t)}
    <div class="row" style="margin-top:8px">
      ${app.grant_id ? html`<button data-act="goto-grant" data-id="${app.grant_id}">查看授权 #${app.grant_id}</button>` : ""}
      ${app.dispute_id ? html`<button data-act="goto-dispute" data-id="${app.dispute_id}">查看争议 #${app.dispute_id}</button>` : ""}
    </div>
    ${reviewForms}${disputeForm}
    <h4>办理记录 <span class="en">events</span></h4><ul class="timeline">${events}</ul></div>`);
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
  notice(html`申请 #${out.id} 已审核：${tag(out.status, APP_STATUS)}`);
  await afterReview(form.dataset.id, form.dataset.pane);
}
async function submitReject(form) {
  const reason = form.elements.reason.value.trim();
  if (!reason) { showError(new Error("退回必须说明理由 (reason_required)")); return; }
  const out = await api("reject", {p: {app_id: form.dataset.id}, json: {reason}});
  notice(html`申请 #${out.id} 已退回：${tag(out.status, APP_STATUS)}`);
  await afterReview(form.dataset.id, form.dataset.pane);
}
async function afterReview(id, pane) {
  await loadApps(pane === "apps" ? "consumer" : "provider");
  await openApp(id, pane);
  refreshBadges();
}
async function submitDispute(form) {
  const items = [...form.querySelectorAll('input[name="items"]:checked')].map((x) => x.value);
  const d = await api("dispute", {p: {app_id: form.dataset.id}, json: {reason: form.elements.reason.value.trim(), items}});
  notice(html`争议 #${d.id} 已提起，双方可在协调记录中沟通，由平台运营方决定。`);
  await activate("disputes");
  await openDispute(d.id);
}

// --- disputes --------------------------------------------------------------------------------

async function loadDisputes() {
  const roles = S.me && S.me.operator ? ["consumer"] : ["consumer", "provider"];
  const pages = await Promise.all(roles.map((r) => api("applications", {q: {role: r, limit: 500}})));
  const ids = [...new Set(pages.flatMap((p) => p.items).filter((a) => a.dispute_id).map((a) => a.dispute_id))].sort((a, b) => b - a);
  const disputes = await Promise.all(ids.slice(0, 60).map((id) => api("disputeGet", {p: {dispute_id: id}})));
  put("disputes-list", html`<div class="row"><button data-act="reload-disputes">刷新</button>
      <form data-form="open-dispute" class="row" style="margin:0"><input name="id" type="number" min="1" placeholder="争议编号" style="width:100px"><button>打开</button></form></div>
    <table><thead><tr><th>争议</th><th>申请</th><th>申请单位</th><th>提供单位</th><th>争议信息项</th><th>状态</th><th>提起时间</th><th>协调决定</th></tr></thead><tbody>
    ${disputes.map((d) => html`<tr class="click" data-act="open-dispute" data-id="${d.id}"><td>#${d.id}</td><td>#${d.application_id}</td>
      <td>${dept(d.consumer)}</td><td>${dept(d.provider)}</td><td>${d.items.map((i) => html`<code>${i}</code> `)}</td>
      <td>${tag(d.status, DISPUTE_STATUS)}</td><td class="nowrap">${fmtTime(d.opened_at)}</td><td>${d.decision ? tag(d.decision, DECISION, d.decision === "uphold" ? "refused" : "granted") : ""}</td></tr>`)}
    </tbody></table>${disputes.length ? "" : html`<p class="muted">暂无争议。申请单位可在被拒绝或退回的申请详情中提起争议。</p>`}`);
}

async function openDispute(id) {
  const d = await api("disputeGet", {p: {dispute_id: id}});
  const me = S.me || {};
  for (const tr of $("disputes-list").querySelectorAll("tr[data-id]")) tr.classList.toggle("sel", tr.dataset.id === String(id));
  const open = d.status === "open";
  const thread = d.messages.map((m) => html`<div class="msg ${m.author === me.code ? "mine" : ""} ${m.author === "operator" ? "op" : ""}">
    <div class="small muted">${dept(m.author)} · ${fmtTime(m.at)}</div><div>${m.body}</div></div>`);
  put("dispute-detail", html`<div class="card"><h3>争议 #${d.id} · 申请 #${d.application_id} ${tag(d.status, DISPUTE_STATUS)}</h3>
    <div class="grid">
      <label>双方</label><div>${dept(d.consumer)}（申请） ↔ ${dept(d.provider)}（提供）</div>
      <label>争议信息项</label><div>${d.items.map((i) => html`<code>${i}</code> `)}</div>
      <label>提起理由</label><div>${d.reason}</div>
      <label>提起时间</label><div>${fmtTime(d.opened_at)}</div>
      ${d.decision ? html`<label>协调决定</label><div>${tag(d.decision, DECISION, d.decision === "uphold" ? "refused" : "granted")}
        ${d.decided_items ? html` 授权：${d.decided_items.map((i) => html`<code>${i}</code> `)}` : ""} · ${dept(d.decided_by)} · ${fmtTime(d.decided_at)}<br>理由：${d.decision_reason}</div>` : ""}
    </div>
    <div class="row" style="margin-top:8px"><button data-act="goto-app" data-id="${d.application_id}" data-pane="${me.code === d.provider ? "review" : "apps"}">查看申请 #${d.application_id}</button></div>
    <h4>协商记录 <span class="en">messages</span></h4>${thread.length ? thread : html`<p class="muted">暂无消息。</p>`}
    ${open ? html`<form data-form="message" data-id="${d.id}" class="row"><input name="body" size="70" required placeholder="发送协商消息（双方与运营方可见）"><button class="primary">发送</button></form>` : ""}
    ${open && me.operator ? html`<div class="card form"><h4>运营方协调决定 <span class="en">POST …/decide</span></h4>
      <form data-form="decide" data-id="${d.id}"><div class="grid">
        <label>决定 decision</label><div>${Object.keys(DECISION).map((k, i) => html`<label><input type="radio" name="decision" value="${k}" ${i === 0 ? "checked" : ""}> ${DECISION[k]} <code>${k}</code></label> `)}</div>
        <label>部分授权的信息项</label><div class="items">${d.items.map((i) => html`<label><input type="checkbox" name="items" value="${i}"> <code>${i}</code></label>`)} <span class="small muted">（仅 partial）</span></div>
        <label class="req">理由 reason</label><textarea name="reason" rows="2" cols="50" required></textarea>
        <span></span><div><button class="primary">作出决定</button></div></div></form></div>` : ""}
    ${open && !me.operator ? html`<p class="muted small">协商不成的，由平台运营方（主管部门）协调决定：切换到运营方身份即可作出决定。</p>` : ""}
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
  if (!body.reason) { showError(new Error("协调决定必须说明理由 (reason_required)")); return; }
  if (decision === "partial") body.items = [...form.querySelectorAll('input[name="items"]:checked')].map((x) => x.value);
  const d = await api("decide", {p: {dispute_id: form.dataset.id}, json: body});
  notice(html`争议 #${d.id} 已决定：${tag(d.decision, DECISION, d.decision === "uphold" ? "refused" : "granted")}`);
  await loadDisputes();
  await openDispute(d.id);
}

// --- grants and the authorization check ------------------------------------------------------

function grantsFilter() {
  return html`<select id="grants-status"><option value="">全部状态</option>${Object.keys(GRANT_STATUS).map((s) => html`<option value="${s}">${GRANT_STATUS[s]} (${s})</option>`)}</select>
    <input id="grants-consumer" placeholder="申请单位 consumer" size="14"><input id="grants-provider" placeholder="提供单位 provider" size="14">
    <input id="grants-topic" placeholder="资源代码" size="18"><button data-act="reload-grants">刷新</button>`;
}

async function loadGrants() {
  const p = new URLSearchParams({limit: 200});
  for (const [id, name] of [["grants-status", "status"], ["grants-consumer", "consumer"], ["grants-provider", "provider"], ["grants-topic", "topic"]]) {
    if ($(id).value.trim()) p.set(name, $(id).value.trim());
  }
  const page = await api("grants", {q: p});
  put("grants-list", html`<p class="muted small">共 ${page.total} 项；“已过期”指有效期最后一天已过（按平台时钟）。</p>
    <table><thead><tr><th>授权</th><th>申请单位</th><th>提供单位</th><th>主题</th><th>信息项</th><th>有效期</th><th>每日限额</th><th>状态</th><th>更新</th></tr></thead><tbody>
    ${page.items.map((g) => html`<tr class="click" data-act="open-grant" data-id="${g.id}"><td>#${g.id}</td><td>${dept(g.consumer)}</td><td>${dept(g.provider)}</td>
      <td><code>${g.topic}</code></td><td>${g.items.length} 项</td><td class="nowrap">${g.valid_from} 至 ${g.valid_until}</td>
      <td class="num">${g.daily_quota || "不限"}</td><td>${tag(g.status, GRANT_STATUS)}${g.status_reason ? html`<br><span class="small">${g.status_reason}</span>` : ""}</td><td class="nowrap">${fmtTime(g.updated_at)}</td></tr>`)}
    </tbody></table>${page.items.length ? "" : html`<p class="muted">暂无授权。</p>`}`);
  renderCheck();
}

async function openGrant(id) {
  const g = await api("grant", {p: {grant_id: id}});
  const t = await topicOf(g.topic).catch(() => null);
  const me = S.me || {};
  for (const tr of $("grants-list").querySelectorAll("tr[data-id]")) tr.classList.toggle("sel", tr.dataset.id === String(id));
  const canRevoke = (me.operator || me.code === g.provider) && (g.status === "active" || g.status === "suspended");
  put("grant-detail", html`<div class="card"><h3>授权 #${g.id} · ${t ? t.name : ""} <code>${g.topic}</code> ${tag(g.status, GRANT_STATUS)}</h3>
    <div class="grid">
      <label>申请单位 → 提供单位</label><div>${dept(g.consumer)} → ${dept(g.provider)}</div>
      <label>授权信息项</label><div>${g.items.map((i) => html`<code>${i}</code> ${itemName(t, i)}　`)}</div>
      <label>用途 · 依据</label><div>${label(SCOPE, g.purpose.scope)} · ${g.purpose.text} · ${g.legal_function}</div>
      <label>有效期 · 限额</label><div>${g.valid_from} 至 ${g.valid_until} · ${g.daily_quota ? html`${g.daily_quota} 条/天` : "不限"} · ${label(DELIVERY, g.delivery)}</div>
      ${g.status_reason ? html`<label>状态说明</label><div>${g.status_reason}</div>` : ""}
      <label>创建 · 更新</label><div>${fmtTime(g.created_at)} · ${fmtTime(g.updated_at)}</div>
    </div>
    <div class="row" style="margin-top:8px">
      ${me.code === g.consumer && g.status === "active" ? html`<button class="primary" data-act="goto-exchange" data-topic="${g.topic}">用此授权交换查询</button>` : ""}
      <button data-act="goto-audit" data-topic="${g.topic}" data-consumer="${g.consumer}">查看相关审计</button>
    </div>
    ${canRevoke ? html`<form data-form="revoke" data-id="${g.id}" class="row"><label class="req">撤销理由</label><input name="reason" size="50" required placeholder="如：用途已终止 / 发现超范围使用"><button class="danger">撤销授权</button></form>` : ""}
  </div>`);
}

async function submitRevoke(form) {
  const reason = form.elements.reason.value.trim();
  if (!reason) { showError(new Error("撤销必须说明理由 (reason_required)")); return; }
  const g = await api("revoke", {p: {grant_id: form.dataset.id}, json: {reason}});
  notice(html`授权 #${g.id} 已撤销：此后的校验与交换返回 <code>grant_revoked</code>。`);
  await loadGrants();
  await openGrant(g.id);
}

function renderCheck() {
  const me = S.me || {};
  put("check-box", html`<div class="card form"><h4>授权校验 <span class="en">POST /api/v1/authz/check</span></h4>
    <form data-form="check" class="row">
      <input name="consumer" size="12" placeholder="consumer" value="${me.operator ? "" : me.code || ""}" required>
      <input name="topic" size="20" placeholder="101001001/000001" required>
      <input name="items" size="30" placeholder="信息项，逗号分隔（空 = 全部已授权项）">
      <input name="records" type="number" min="0" value="1" style="width:80px" title="records">
      <button>校验</button></form><div id="check-result"></div></div>`);
}
async function submitCheck(form) {
  const f = form.elements;
  const body = {consumer: f.consumer.value.trim(), topic: f.topic.value.trim(), records: Number(f.records.value || 1)};
  const items = f.items.value.split(/[,，\s]+/).filter(Boolean);
  if (items.length) body.items = items;
  const r = await api("check", {json: body});
  put("check-result", html`<p>${r.allowed ? html`<span class="tag ok">允许 allowed</span>` : html`<span class="tag bad">拒绝 denied</span>`}
    原因 <code>${r.reason}</code> · 授权 ${r.grant_id ? html`#${r.grant_id}` : "—"} · 信息项 ${r.items.map((i) => html`<code>${i}</code> `)}
    · 今日剩余额度 ${r.remaining_quota === null ? "不限" : r.remaining_quota}</p>`);
}

// --- exchange through the broker -------------------------------------------------------------

async function loadExchange(topic) {
  const me = S.me || {};
  if (me.operator) {
    put("exchange-form", html`<p class="muted">数据交换以申请单位的身份进行：请在“身份”中切换到持有授权的部门（运营方可在“审计日志”中查看全部交换）。</p>`);
    put("exchange-result", "");
    return;
  }
  const grants = (await api("grants", {q: {consumer: me.code, limit: 500}})).items;
  const active = grants.filter((g) => g.status === "active");
  const chosen = topic || ($("x-topic") && $("x-topic").value) || (active[0] && active[0].topic) || "";
  put("exchange-form", html`<div class="card form"><form data-form="query"><div class="grid">
      <label>主题 topic</label><div><select name="topic" id="x-topic" data-act-change="x-topic">
        ${active.map((g) => html`<option value="${g.topic}" ${g.topic === chosen ? "selected" : ""}>${g.topic} · 授权 #${g.id}</option>`)}
        ${chosen && !active.some((g) => g.topic === chosen) ? html`<option value="${chosen}" selected>${chosen}（无有效授权）</option>` : ""}
      </select> <span class="muted small">${active.length ? "" : "本单位暂无有效授权：先在“目录检索”中申请。"}</span></div>
      <label>信息项 items</label><div id="x-items" class="items"></div>
      <label class="req">查询键 keys</label><div><textarea name="keys" rows="4" cols="60" placeholder="每行一个键（身份证号 / 统一社会信用代码 …），最多 1000 个"></textarea>
        <br><button type="button" data-act="sample-keys">取样本键</button> <span class="muted small">（通过 broker export 取 3 条记录的键；计入限额与审计）</span></div>
      <label>业务事项 X-Exchange-Case</label><input name="case" size="40" placeholder="如：低保审核 2026-0001">
      <span></span><div><button class="primary">查询 <span class="en">POST /api/v1/exchange/…/query</span></button></div>
    </div></form></div>`);
  put("exchange-result", "");
  if (chosen) await renderExchangeItems(chosen, grants);
}

async function renderExchangeItems(code, grants) {
  const t = await topicOf(code);
  const g = (grants || (await api("grants", {q: {consumer: S.me.code, topic: code}})).items).find((x) => x.topic === code && x.status === "active");
  const granted = new Set(g ? g.items : []);
  put("x-items", html`${t.items.map((i) => html`<label title="${granted.has(i.field) ? "已授权" : "未授权：勾选将被拒绝 item_not_granted"}"><input type="checkbox" name="items" value="${i.field}"> ${i.name} <code>${i.field}</code>
      ${granted.has(i.field) ? html`<span class="tag granted">已授权</span>` : html`<span class="tag not_shared">未授权</span>`}</label>`)}
    <div class="small muted">不勾选 = 全部已授权信息项；响应只含已授权的信息项，无论提供方返回什么。</div>`);
}

async function sampleKeys() {
  const code = $("x-topic").value;
  const t = await topicOf(code);
  const k = t.items.find((i) => i.is_key);
  const out = await api("export", {p: rc(code), q: {limit: 3, items: k ? k.field : ""}, text: true});
  const keys = out.text.split("\n").filter(Boolean).map((line) => JSON.parse(line)).map((r) => (k ? r[k.field] : Object.values(r)[0]));
  const box = document.querySelector('form[data-form="query"] textarea[name="keys"]');
  // For ID-number topics, add one malformed number so the answer shows the provider's `invalid` list.
  const bad = k && k.field === "id_number" ? ["440100190001010000"] : [];
  box.value = keys.concat(bad).join("\n");
  notice(html`已取 ${keys.length} 个样本键（export request <code>${out.headers.get("x-request-id") || ""}</code>）${bad.length ? html`，另加 1 个校验位错误的身份证号以演示 <code>invalid</code>` : ""}。`);
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
    put("exchange-result", html`<div class="card"><h3>交换被拒绝或失败</h3><p class="err">${errorBlock(e)}</p>
      ${e.requestId ? html`<button data-act="goto-audit" data-rid="${e.requestId}">在审计日志中查看此请求</button>` : ""}</div>`);
    return;
  }
  const cols = [...new Set(r.records.flatMap((rec) => Object.keys(rec)))];
  const notReturned = t.items.filter((i) => !cols.includes(i.field));
  put("exchange-result", html`<div class="card"><h3>交换结果 · request id <code>${r.request_id}</code>
      <button data-act="goto-audit" data-rid="${r.request_id}">在审计日志中查看</button></h3>
    <p>返回 ${r.records.length} 条记录 · 未找到 ${r.not_found.length} · 格式错误 ${(r.invalid || []).length}</p>
    <p class="small">返回的信息项：${cols.map((c) => html`<code>${c}</code> `)}<br>
      <span class="muted">未返回（未授权或未请求）：${notReturned.map((i) => html`<code>${i.field}</code> `)}</span></p>
    <div class="scroll"><table><thead><tr>${cols.map((c) => html`<th>${itemName(t, c)}<br><code>${c}</code></th>`)}</tr></thead><tbody>
      ${r.records.map((rec) => html`<tr>${cols.map((c) => html`<td>${typeof rec[c] === "object" && rec[c] !== null ? JSON.stringify(rec[c]) : rec[c]}</td>`)}</tr>`)}</tbody></table></div>
    ${r.not_found.length ? html`<p>未找到 <span class="en">not_found</span>：${r.not_found.map((k) => html`<code>${k}</code> `)}</p>` : ""}
    ${(r.invalid || []).length ? html`<p>格式错误 <span class="en">invalid</span>：${r.invalid.map((x) => html`<code>${x.key}</code> ${x.code} ${x.message}；`)}</p>` : ""}
  </div>`);
}

// --- audit -----------------------------------------------------------------------------------

function auditFilter() {
  return html`<input id="au-consumer" placeholder="consumer" size="10"><input id="au-provider" placeholder="provider" size="10">
    <input id="au-topic" placeholder="资源代码" size="18"><input id="au-rid" placeholder="request id" size="34">
    <input id="au-outcome" placeholder="outcome (ok / client.…)" size="20">
    <button data-act="audit-search">查询</button><button data-act="audit-next">下一页</button>`;
}

async function loadAudit() {
  S.auditAfter = 0;
  await Promise.all([loadStats(), loadEntries()]);
  const me = S.me || {};
  put("audit-verify", html`<div class="row"><button data-act="verify" ${me.operator ? "" : "disabled"}>校验哈希链 <span class="en">GET /api/v1/audit/verify</span></button>
    ${me.operator ? "" : html`<span class="muted small">仅运营方可校验</span>`}<span id="verify-result"></span></div>`);
}

function volumeTable(title, by, nameOf) {
  const rows = Object.entries(by).sort((a, b) => b[1].records - a[1].records);
  return html`<div><h4>${title}</h4><table><thead><tr><th></th><th class="num">调用</th><th class="num">记录</th></tr></thead><tbody>
    ${rows.map(([k, v]) => html`<tr><td>${nameOf(k)}</td><td class="num">${v.calls}</td><td class="num">${v.records}</td></tr>`)}</tbody></table>
    ${rows.length ? "" : html`<p class="muted small">无</p>`}</div>`;
}
async function loadStats() {
  const s = await api("auditStats");
  const topic = (k) => html`<code>${k}</code>`;
  put("audit-stats", html`<div class="card"><h3>今日交换量 <span class="en">${s.day} (platform day, Beijing)</span></h3>
    <span class="stat">今日调用<b>${s.today.calls}</b></span><span class="stat">今日交换记录<b>${s.today.records}</b></span>
    <span class="stat">累计调用<b>${s.total.calls}</b></span><span class="stat">累计记录<b>${s.total.records}</b></span>
    <div class="cols">${volumeTable("按提供单位", s.today.by_provider, dept)}${volumeTable("按申请单位", s.today.by_consumer, dept)}${volumeTable("按主题", s.today.by_topic, topic)}</div></div>`);
}
async function loadEntries() {
  const p = new URLSearchParams({after: S.auditAfter, limit: 50});
  for (const [id, name] of [["au-consumer", "consumer"], ["au-provider", "provider"], ["au-topic", "resource_code"], ["au-rid", "request_id"], ["au-outcome", "outcome"]]) {
    if ($(id).value.trim()) p.set(name, $(id).value.trim());
  }
  const page = await api("auditEntries", {q: p});
  S.auditNext = page.next_after;
  put("audit-list", html`<p class="muted small">按哈希链顺序（seq）；${S.auditAfter ? `从 seq ${S.auditAfter} 之后` : "从头"}，${page.entries.length} 条${page.next_after ? "，还有更多" : ""}。</p>
    <table><thead><tr><th>seq</th><th>时间</th><th>request id</th><th>类型</th><th>申请单位</th><th>提供单位</th><th>主题</th><th>信息项</th><th>业务事项</th><th class="num">记录</th><th>结果</th><th class="num">耗时</th><th>hash</th></tr></thead><tbody>
    ${page.entries.map((e) => html`<tr><td>${e.seq}</td><td class="nowrap">${fmtTime(e.at)}</td><td><code>${e.request_id}</code></td><td>${e.kind}</td>
      <td>${dept(e.consumer)}</td><td>${e.provider ? dept(e.provider) : ""}</td><td><code>${e.resource_code || ""}</code></td>
      <td class="small">${e.items.join(", ")}</td><td>${caseText(e.case)}</td><td class="num">${e.records}</td>
      <td><span class="tag ${e.outcome === "ok" ? "ok" : "bad"}">${e.outcome}</span> <span class="small">${e.status}</span></td>
      <td class="num">${e.latency_ms.toFixed(1)} ms</td><td><code title="${e.hash}">${e.hash.slice(0, 10)}…</code></td></tr>`)}</tbody></table>
    ${page.entries.length ? "" : html`<p class="muted">暂无审计记录：在“数据交换”中做一次查询。</p>`}`);
}
function caseText(c) {
  if (!c) return "";
  try { return decodeURIComponent(c); } catch (e) { return c; }
}
async function verifyChain() {
  const r = await api("auditVerify");
  put("verify-result", r.ok
    ? html`<span class="tag ok">完整 ok</span> 共 ${r.entries} 条，最后 seq ${r.last_seq}`
    : html`<span class="tag bad">异常 ${r.problem}</span> 第一个问题 seq ${r.first_bad_seq}：${r.message}`);
}

// --- platform clock --------------------------------------------------------------------------

async function loadPlatform() {
  await refreshClock();
  const c = S.clock;
  const me = S.me || {};
  const presets = ["1d", "3d", "5d", "10d", "2w", "30d", "52w"];
  put("platform-clock", html`<div class="card"><h3>平台时间 ${fmtTime(c.now)} <span class="en">Beijing · today ${c.today}</span></h3>
    <p>偏移 offset：${(c.offset_seconds / 86400).toFixed(2)} 天（${c.offset_seconds} s）。审核期限、逾期标记与授权到期都以平台时钟为准。</p>
    ${me.operator ? html`<form data-form="advance" class="row">推进时钟 <span class="en">POST /api/v1/clock/advance</span>
        ${presets.map((p) => html`<button type="button" data-act="advance" data-by="${p}">+${p}</button>`)}
        <input name="by" size="6" placeholder="36h"><button>推进</button></form>`
      : html`<p class="muted">仅平台运营方可推进时钟（切换到 operator 身份）。</p>`}</div>`);
  const [overdue, pending, expired] = await Promise.all([
    api("applications", {q: {role: "provider", overdue: "true", limit: 100}}),
    api("applications", {q: {role: "provider", status: "pending_review", limit: 100}}),
    api("grants", {q: {status: "expired", limit: 100}}),
  ]);
  put("platform-effects", html`<div class="cols">
    <div class="card"><h4>逾期未审 <span class="en">overdue reviews</span> · ${overdue.total} / 待审 ${pending.total}</h4>
      <table><thead><tr><th>申请</th><th>主题</th><th>申请 → 提供</th><th>审核期限</th></tr></thead><tbody>
      ${pending.items.map((a) => html`<tr class="click ${a.overdue ? "overdue" : ""}" data-act="goto-app" data-id="${a.id}" data-pane="review"><td>#${a.id}</td><td>${a.topic_name}</td><td>${dept(a.consumer)} → ${dept(a.provider)}</td><td>${deadlineCell(a)}</td></tr>`)}</tbody></table></div>
    <div class="card"><h4>已过期授权 <span class="en">expired grants</span> · ${expired.total}</h4>
      <table><thead><tr><th>授权</th><th>申请 → 提供</th><th>主题</th><th>有效期至</th></tr></thead><tbody>
      ${expired.items.map((g) => html`<tr class="click" data-act="goto-grant" data-id="${g.id}"><td>#${g.id}</td><td>${dept(g.consumer)} → ${dept(g.provider)}</td><td><code>${g.topic}</code></td><td>${g.valid_until} ${tag(g.status, GRANT_STATUS)}</td></tr>`)}</tbody></table></div></div>`);
}
async function advance(by) {
  const c = await api("advance", {json: {by}});
  notice(html`平台时钟已推进 ${by}，现在 ${fmtTime(c.now)}（北京）。`);
  await loadPlatform();
  refreshBadges();
}

// --- members and the change feed -------------------------------------------------------------

async function loadDepartments() {
  await loadDepts();
  put("depts", Object.values(S.depts).map((d) => html`<tr><td><code>${d.code}</code></td><td>${d.name}</td><td>${d.kind}</td><td><code>${d.credit_code || ""}</code></td><td>${d.base_url || ""}</td></tr>`));
}

let feedCursor = 0, feedRunning = false;
async function startFeed() {
  if (feedRunning) return;
  feedRunning = true;
  while (feedRunning) {
    try {
      const page = await api("changes", {q: {after: feedCursor, limit: 200, wait: 20}});
      for (const c of page.changes) {
        const tr = document.createElement("tr");
        tr.innerHTML = toHTML(html`<td>${c.cursor}</td><td>${fmtTime(c.at)}</td><td>${c.kind}</td><td><code>${c.resource_code}</code></td><td>${c.version}</td><td>${c.by}</td><td><code>${JSON.stringify(c.changes).slice(0, 200)}</code></td>`);
        $("feed").prepend(tr);
      }
      feedCursor = page.next_cursor;
    } catch (e) { showError(e); feedRunning = false; }
  }
}

// --- navigation helpers and event wiring -----------------------------------------------------

async function gotoApp(id, pane) {
  const p = pane === "review" ? "review" : "apps";
  await activate(p === "review" ? "review" : "applications");
  await openApp(id, p);
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

const ACTIONS = {
  "tab": (el) => activate(el.dataset.tab),
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
  "audit-next": () => { if (S.auditNext) { S.auditAfter = S.auditNext; return loadEntries(); } notice("已是最后一页。"); return null; },
  "verify": () => verifyChain(),
  "advance": (el) => advance(el.dataset.by),
};
const FORMS = {
  "apply": submitApply, "approve": submitApprove, "reject": submitReject, "dispute": submitDispute,
  "message": submitMessage, "decide": submitDecide, "revoke": submitRevoke, "check": submitCheck,
  "query": submitQuery, "advance": (form) => advance(form.elements.by.value.trim()),
  "open-dispute": (form) => openDispute(form.elements.id.value),
};

document.addEventListener("click", (ev) => {
  const el = ev.target.closest("[data-act]");
  if (!el || ev.target.closest("form") && el.tagName === "TR") return;
  if (el.tagName === "BUTTON") ev.preventDefault();
  showError();
  guard(ACTIONS[el.dataset.act](el, ev));
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
});

// Reads #key=…&keys=…&tab=…&q=…&topic=…&app=…&dispute=…&grant=… (see index.html).
function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  for (const k of (p.get("keys") || "").split(",").filter(Boolean).reverse()) {
    const code = codeOfKey(k);
    remember(k, code, code === "operator" ? "平台运营方" : deptName(code));
  }
  if (p.get("key")) { $("key").value = p.get("key"); localStorage.setItem("exchange.key", p.get("key")); }
  return p;
}

async function start() {
  renderTabs();
  put("apps-filter", filterBar("apps", "consumer"));
  put("review-filter", filterBar("review", "provider"));
  put("grants-filter", grantsFilter());
  put("audit-filter", auditFilter());
  $("key").value = localStorage.getItem("exchange.key") || "";
  const p = readHash();
  if (p.get("q")) $("q").value = p.get("q");
  $("key").onchange = () => setKey(key());
  $("role").onchange = onRoleChange;
  $("search").onclick = () => { offset = 0; guard(search()); };
  $("q").onkeydown = (e) => { if (e.key === "Enter") { offset = 0; guard(search()); } };
  $("prev").onclick = () => { offset = Math.max(0, offset - limit); guard(search()); };
  $("next").onclick = () => { offset += limit; guard(search()); };
  const tab = TABS.some(([id]) => id === p.get("tab")) || (window.EXCHANGE_TABS || []).some(([id]) => id === p.get("tab")) ? p.get("tab") : "catalog";
  switchTab(tab);
  renderRole();
  if (!key()) { $("who").textContent = "未登录：请粘贴 key"; return; }
  await identify();
  await activate(tab);
  if (p.get("topic")) await detail(p.get("topic"));
  if (p.get("app")) await openApp(p.get("app"), tab === "review" ? "review" : "apps");
  if (p.get("dispute")) await openDispute(p.get("dispute"));
  if (p.get("grant")) await openGrant(p.get("grant"));
  setInterval(refreshClock, 60000);
}
guard(start());
