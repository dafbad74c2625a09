// The portal uses only the public API with the key the user pastes in.
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
const SHARING = {unconditional: "无条件共享", conditional: "有条件共享", not_shared: "不予共享"};
const tabs = [["catalog", "目录检索"], ["departments", "接入单位"], ["changes", "目录变更"]];
const extraTabs = window.EXCHANGE_TABS || [];
let offset = 0; const limit = 20;

function key() { return $("key").value.trim(); }
async function api(path, opts = {}) {
  const headers = Object.assign({"Authorization": "Bearer " + key()}, opts.body ? {"Content-Type": "application/json"} : {}, opts.headers || {});
  const resp = await fetch(path, Object.assign({}, opts, {headers}));
  const body = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (!resp.ok) {
    const e = (body && body.error) || {code: "http_" + resp.status, message: resp.statusText};
    throw new Error(`${resp.status} ${e.code}: ${e.message}` + (e.request_id ? `  (request ${e.request_id})` : ""));
  }
  return body;
}
function showError(e) { $("error").textContent = e ? String(e.message || e) : ""; }

function renderTabs() {
  const nav = $("tabs");
  nav.innerHTML = "";
  for (const [id, label] of tabs.concat(extraTabs)) {
    const b = document.createElement("button");
    b.textContent = label; b.dataset.tab = id;
    b.onclick = () => switchTab(id);
    nav.appendChild(b);
  }
  switchTab("catalog");
}
function switchTab(id) {
  for (const b of $("tabs").children) b.classList.toggle("on", b.dataset.tab === id);
  for (const s of document.querySelectorAll("section")) s.classList.toggle("on", s.id === "tab-" + id);
  if (id === "departments") loadDepartments().catch(showError);
  if (id === "changes") startFeed();
}

async function whoami() {
  localStorage.setItem("exchange.key", key());
  try {
    const me = await api("/api/v1/departments/me");
    $("who").textContent = `${me.name} (${me.code})`;
  } catch (e) {
    $("who").textContent = e.message.includes("department_not_found") ? "平台运营方 (operator)" : "";
  }
}

async function search() {
  showError();
  const p = new URLSearchParams({offset, limit, status: $("status").value});
  for (const [id, name] of [["q", "q"], ["category", "category"], ["sharing", "sharing_type"], ["provider", "provider"]]) {
    if ($(id).value.trim()) p.set(name, $(id).value.trim());
  }
  const page = await api("/api/v1/catalog/topics?" + p);
  $("total").textContent = `共 ${page.total} 条，第 ${offset + 1}–${Math.min(offset + limit, page.total)} 条`;
  $("results").innerHTML = page.items.map((t) => `<tr class="click" data-code="${esc(t.resource_code)}">
    <td><code>${esc(t.resource_code)}</code></td><td>${esc(t.name)}</td><td>${esc(t.provider_name)}</td>
    <td><span class="tag ${esc(t.sharing.type)}">${esc(SHARING[t.sharing.type])}</span></td>
    <td>${esc(t.resource_type)}</td><td><span class="tag ${esc(t.status)}">${esc(t.status)}</span></td></tr>`).join("");
  for (const tr of $("results").children) tr.onclick = () => detail(tr.dataset.code).catch(showError);
}

async function detail(code) {
  const t = await api("/api/v1/catalog/topics/" + code);
  const items = t.items.map((i) => `<tr><td><code>${esc(i.field)}</code></td><td>${esc(i.name)}</td><td>${esc(i.data_type)}</td>
    <td><span class="tag ${esc(i.sharing_type)}">${esc(SHARING[i.sharing_type])}</span></td>
    <td>${esc(i.element || "")}${i.element ? (i.is_source ? " (源)" : " (转共享)") : ""}</td></tr>`).join("");
  const hist = (t.history || []).map((h) => `<li>v${h.version} · ${esc(h.changed_at)} · ${esc(h.changed_by)} · ${esc(h.reason)} <code>${esc(JSON.stringify(h.changes))}</code></li>`).join("");
  $("detail").innerHTML = `<div class="card"><h3>${esc(t.name)} <span class="tag ${esc(t.status)}">${esc(t.status)}</span></h3>
    <p><code>${esc(t.resource_code)}</code> · ${esc(t.provider_name)} (${esc(t.provider_code)}) · ${esc(t.classification)} / ${esc(t.group)} · ${esc(t.resource_type)} · ${esc(t.format)} · 更新周期 ${esc(t.update_cycle)} · v${t.version}</p>
    <p>${esc(t.abstract)}</p>
    <p>共享：<span class="tag ${esc(t.sharing.type)}">${esc(SHARING[t.sharing.type])}</span> ${esc(t.sharing.conditions || "")} ${esc(t.sharing.legal_basis || "")}</p>
    ${t.retire_reason ? `<p class="err">废置原因：${esc(t.retire_reason)}</p>` : ""}
    <table><thead><tr><th>字段</th><th>信息项</th><th>类型</th><th>共享类型</th><th>数据元</th></tr></thead><tbody>${items}</tbody></table>
    <h4>版本历史</h4><ul>${hist}</ul>
    <div id="topic-actions" data-code="${esc(t.resource_code)}"></div></div>`;
  if (window.EXCHANGE_TOPIC_ACTIONS) window.EXCHANGE_TOPIC_ACTIONS(t, $("topic-actions"));
}

async function loadDepartments() {
  const units = await api("/api/v1/departments");
  $("depts").innerHTML = units.map((d) => `<tr><td><code>${esc(d.code)}</code></td><td>${esc(d.name)}</td><td>${esc(d.kind)}</td><td><code>${esc(d.credit_code || "")}</code></td><td>${esc(d.base_url || "")}</td></tr>`).join("");
}

let feedCursor = 0, feedRunning = false;
async function startFeed() {
  if (feedRunning) return;
  feedRunning = true;
  while (feedRunning) {
    try {
      const page = await api(`/api/v1/catalog/changes?after=${feedCursor}&limit=200&wait=20`);
      for (const c of page.changes) {
        const tr = document.createElement("tr");
        tr.innerHTML = `<td>${c.cursor}</td><td>${esc(c.at)}</td><td>${esc(c.kind)}</td><td><code>${esc(c.resource_code)}</code></td><td>${c.version}</td><td>${esc(c.by)}</td><td><code>${esc(JSON.stringify(c.changes)).slice(0, 200)}</code></td>`;
        $("feed").prepend(tr);
      }
      feedCursor = page.next_cursor;
    } catch (e) { showError(e); feedRunning = false; }
  }
}

$("key").value = localStorage.getItem("exchange.key") || "";
$("key").onchange = () => { whoami(); search().catch(showError); };
$("search").onclick = () => { offset = 0; search().catch(showError); };
$("q").onkeydown = (e) => { if (e.key === "Enter") { offset = 0; search().catch(showError); } };
$("prev").onclick = () => { offset = Math.max(0, offset - limit); search().catch(showError); };
$("next").onclick = () => { offset += limit; search().catch(showError); };
renderTabs();
if (key()) { whoami(); search().catch(showError); }
