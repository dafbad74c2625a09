// exchange portal: one page over the public API, authenticated by a department's key.
// Native ES modules, no build step: core.js (state, the API table, errors), ui.js (rendering),
// glossary.js (every label and code in Chinese and English), one module per tab (catalog.js,
// applications.js, disputes.js, grants.js, exchange.js, audit.js, platform.js, members.js,
// dashboard.js, licences.js, subscriptions.js, verify.js, credit.js, libraries.js). This one
// holds the identity, the tabs and the page's wiring. Extension hooks: window.EXCHANGE_TABS =
// [[id, label], ...] (with their own <section id="tab-ID">) and
// window.EXCHANGE_TOPIC_ACTIONS(topic, element).
import {$, html, put, T} from "/ui.js";
import {lang, setLang, applyStatic} from "/glossary.js";
import {DEMO, DEMO_UNITS, S, key, api, errorBlock, showError, notice, clearNotice, guard, NoIdentity, Stale, loadDepts, deptName, refreshClock, refreshBadges} from "/core.js";
import {search, searchFrom, detail, submitApply} from "/catalog.js";
import {filterBar, loadApps, openApp, submitApprove, submitReject, submitDispute} from "/applications.js";
import {loadDisputes, openDispute, submitMessage, submitDecide} from "/disputes.js";
import {grantsFilter, loadGrants, openGrant, submitRevoke, submitCheck} from "/grants.js";
import {loadExchange, renderExchangeItems, sampleKeys, submitQuery} from "/exchange.js";
import {auditFilter, loadAudit, loadEntries, nextEntries, verifyChain} from "/audit.js";
import {loadPlatform, advance} from "/platform.js";
import {loadDepartments, startFeed, stopFeed} from "/members.js";
import {startDashboard, stopDashboard} from "/dashboard.js";
import {loadLicences, verifyLicence} from "/licences.js";
import {loadSubscriptions, loadDeadLetters, settleDeadLetters} from "/subscriptions.js";
import {renderVerifyForm, verifyClaims} from "/verify.js";
import {loadCredit, searchCredit, checkLists} from "/credit.js";
import {loadLibraries, startGathering, filterConflicts, pageConflicts, openResolve, resolveConflict} from "/libraries.js";

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
  clearNotice();
  for (const id of PANES) if ($(id)) put(id, "");
  $("total").textContent = "";
  stopDashboard();
  stopFeed();
}

async function identify() {
  resetPanes();
  const gen = S.gen;
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
  // The clock and the badge keep quiet about failures, late answers included: if another
  // identity took over meanwhile, what was meant to follow this one (its tab) must not run.
  if (gen !== S.gen) throw new Stale();
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
  ["ops", "运行监测", () => startDashboard(), true],
  ["licences", "电子证照", () => loadLicences()],
  ["subs", "订阅分发", () => { renderVerifyForm(); return loadSubscriptions(); }],
  ["credit", "信用双公示", () => loadCredit()],
  ["libraries", "基础信息库", () => loadLibraries()],
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
  const gen = S.gen;
  setLang(lang() === "en" ? "zh" : "en");
  renderStatic();
  renderIdentity();
  renderTabs();
  await refreshClock();
  await refreshBadges();
  // As in identify(): another identity taking over meanwhile draws the tab itself.
  if (gen !== S.gen) return;
  if (key()) await activate(S.tab);
}


const ACTIONS = {
  "credit-lists": () => checkLists(),
  "lib-gather": (el) => startGathering(el),
  "lib-page": (el) => pageConflicts(el),
  "lib-resolve": (el) => openResolve(el),
  "tab": (el) => activate(el.dataset.tab),
  "sub-reload": () => loadSubscriptions(),
  "sub-dead": (el) => loadDeadLetters(el.dataset.id),
  "sub-retry": (el) => settleDeadLetters(el.dataset.id, "retry"),
  "sub-discard": (el) => settleDeadLetters(el.dataset.id, "discard"),
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
  "audit-next": () => nextEntries(),
  "verify": () => verifyChain(),
  "advance": (el) => advance(el.dataset.by),
  "sign-out": () => signOut(),
  "lang": () => toggleLang(),
  "search": () => searchFrom("first"),
  "prev": () => searchFrom("prev"),
  "next": () => searchFrom("next"),
};
const FORMS = {
  "credit-search": (form) => searchCredit(form),
  "lib-conflicts": (form) => filterConflicts(form),
  "lib-resolve": (form) => resolveConflict(form),
  "apply": submitApply, "approve": submitApprove, "reject": submitReject,
  "dispute": async (form) => {
    const d = await submitDispute(form);
    await gotoDispute(d.id);
    notice(T("争议 #{id} 已提起，双方可在协调记录中沟通，由平台运营方决定。", {id: d.id}));
  },
  "message": submitMessage, "decide": submitDecide, "revoke": submitRevoke, "check": submitCheck,
  "query": submitQuery, "advance": (form) => advance(form.elements.by.value.trim()),
  "open-dispute": (form) => openDispute(form.elements.id.value), "sign-in": signIn,
  "identity": (form) => { if (form.elements.key.value.trim() !== S.key) setKey(form.elements.key.value.trim()); },
  "search": () => searchFrom("first"),
  "lic-verify": (form) => verifyLicence(form),
  "verify-claims": (form) => verifyClaims(form),
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
  // Before anything that may be overtaken by another identity: the clock ticks for whoever comes.
  if (!clockTimer) clockTimer = setInterval(refreshClock, 60000);
  if (!key()) { switchTab("catalog"); return; }
  await identify();
  await activate(visibleTabs().some(([id]) => id === wanted) ? wanted : "catalog");
  if (p.get("topic")) await detail(p.get("topic"));
  if (p.get("app")) await openApp(p.get("app"), S.tab === "review" ? "review" : "apps");
  if (p.get("dispute")) await openDispute(p.get("dispute"));
  if (p.get("grant")) await openGrant(p.get("grant"));
}
let clockTimer = 0;
guard(start());
// A link pasted into an open portal (#key=…&tab=…) takes effect without a reload.
window.addEventListener("hashchange", () => {
  const p = new URLSearchParams(location.hash.slice(1));
  if (!p.get("key") && !p.get("keys") && !p.get("topic") && !p.get("app") && !p.get("dispute") && !p.get("grant") && !p.get("q")) return;
  guard(start());
});
