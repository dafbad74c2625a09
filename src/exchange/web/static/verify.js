// 信息核验 (核验): does the source hold what a citizen declared? The department names a
// topic, a key and its claims (item = value, or item = min..max for a range); the exchange
// asks the provider and answers per item match / mismatch / unknown, never the value
// (POST /api/v1/exchange/{front}/{seq}/verify). Allowed under a grant with the
// data_verification scope, or for items the catalog marks verifiable (a bank, for one).
import {html, put, table, T} from "/ui.js";
import {api} from "/core.js";

const OUTCOMES = {
  match: ["一致", "approved"],
  mismatch: ["不一致", "rejected"],
  unknown: ["无法核验", "pending_review"],
};
const STATUS = {
  found: "源头有该记录",
  not_found: "源头无该记录",
  invalid_key: "提供单位认为该键值格式不正确",
};
const RANGE = /^\s*(-?\d+(?:\.\d+)?)\s*\.\.\s*(-?\d+(?:\.\d+)?)\s*$/;

export function renderVerifyForm() {
  put("verify-form", html`<form data-form="verify-claims" class="grid" id="verify-claims">
    <label for="verify-topic">${T("资源代码")}</label><input id="verify-topic" name="topic" required pattern="[123]\\d{8}/\\d{6}" placeholder="101001001/000001" autocomplete="off">
    <label for="verify-key">${T("记录键值")}</label><input id="verify-key" name="key" required maxlength="200" placeholder="${T("如公民身份号码")}" autocomplete="off">
    <label for="verify-lines">${T("声明内容")}</label><textarea id="verify-lines" name="claims" rows="4" required maxlength="8000" placeholder="name=张三&#10;registered_address=广州市天河区…&#10;contribution_base=5000..8000"></textarea>
    <div></div><div><button type="submit">${T("核验")}</button> <span class="muted small">${T("每行一项：信息项=声明值；数值范围写作 最小..最大。")}</span></div></form>`);
}

// "item=value" lines → the claims object; a numeric range "a..b" → {min, max}.
export function parseClaims(text) {
  const claims = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf("=");
    if (at <= 0) throw new Error(`"${line}": item=value`);
    const item = line.slice(0, at).trim();
    const value = line.slice(at + 1).trim();
    const range = RANGE.exec(value);
    claims[item] = range ? {min: Number(range[1]), max: Number(range[2])} : value;
  }
  return claims;
}

export async function verifyClaims(form) {
  const [front, seq] = form.elements.topic.value.trim().split("/");
  let claims;
  try {
    claims = parseClaims(form.elements.claims.value);
  } catch (e) {
    put("claims-result", html`<div class="card bad" role="status"><p>${T("声明内容格式不正确：{line}", {line: e.message})}</p></div>`);
    return;
  }
  const body = {key: form.elements.key.value.trim(), claims};
  const r = await api("verify", {p: {front, seq}, json: body});
  const rows = Object.entries(r.outcomes).map(([item, outcome]) => {
    const [word, tag] = OUTCOMES[outcome] || [outcome, ""];
    return html`<tr data-item="${item}"><td><code>${item}</code></td><td><span class="tag ${tag}" data-outcome="${outcome}">${T(word)}</span></td></tr>`;
  });
  const all = Object.values(r.outcomes);
  const ok = r.status === "found" && all.every((o) => o === "match");
  put("claims-result", html`<div class="card ${ok ? "ok" : "bad"}" role="status" id="verify-card">
    <h3>${ok ? T("全部一致") : T("并非全部一致")}</h3>
    <p>${T(STATUS[r.status] || r.status)} · <code>${r.key}</code></p>
    ${table([T("信息项"), T("核验结果")], rows, T("无"), 'id="verify-table"')}
    <p class="muted small">${T("核验只回答是否一致，不返回源头数据；审计记录核验了哪些信息项及结果，不记录声明值。")} · ${T("请求编号")} <code>${r.request_id}</code></p></div>`);
}
