// 电子证照: licence verification (证照核验) and the counts per type. Verification goes to
// POST /api/v1/licences/verify, which checks the number and code exactly as the offline
// verifier of the SDK and `exchange licence verify` do (signature, number, items, the signed
// status list, expiry on the platform's day).
import {html, put, table, fmtNum, fmtTime, T} from "/ui.js";
import {api, deptName} from "/core.js";

// Every verification reason, in the order they are checked (token.REASONS).
const REASONS = {
  valid: "有效：平台签发、未被篡改、未注销且在有效期内",
  malformed: "核验码格式不正确（不完整、输错或不是核验码）",
  unknown_key: "核验码由未知的密钥签名",
  altered: "签名与核验码内容不符：已被篡改",
  number_mismatch: "核验码属于另一个证照编号",
  content_altered: "出示的照面信息与签发时不一致",
  revoked: "发证部门已注销该证照",
  expired: "证照已过有效期（按平台日期）",
};

export function renderLicenceForm() {
  put("lic-form", html`<form data-form="lic-verify" class="grid">
    <label for="lic-number">${T("证照编号")}</label><input id="lic-number" name="number" required maxlength="64" autocomplete="off">
    <label for="lic-code">${T("核验码")}</label><textarea id="lic-code" name="code" rows="3" required maxlength="4000" placeholder="LV1.…"></textarea>
    <div></div><div><button type="submit">${T("核验")}</button></div></form>`);
}

export async function verifyLicence(form) {
  const body = {number: form.elements.number.value.trim(), code: form.elements.code.value.trim()};
  const r = await api("licenceVerify", {json: body});
  const lic = r.licence;
  const facts = lic ? html`<table class="kv"><tbody>
    <tr><th>${T("证照类型")}</th><td>${lic.type_name} <code>${lic.type_code}</code></td></tr>
    <tr><th>${T("持证主体")}</th><td>${lic.holder_name} <code>${lic.holder_id}</code></td></tr>
    <tr><th>${T("发证机关")}</th><td>${lic.issuer_name} <code>${lic.issuer}</code></td></tr>
    <tr><th>${T("发证日期")}</th><td>${lic.issued_on}</td></tr>
    <tr><th>${T("有效期至")}</th><td>${lic.valid_until || T("长期")}</td></tr></tbody></table>` : "";
  const revoked = r.revocation ? html`<p>${T("注销于 {t}：{why}", {t: fmtTime(r.revocation.at), why: r.revocation.reason})}</p>` : "";
  put("lic-result", html`<div class="card ${r.ok ? "ok" : "bad"}" role="status">
    <h3>${r.ok ? T("核验通过") : T("核验未通过")} <code>${r.reason}</code></h3>
    <p>${T(REASONS[r.reason] || r.message)}</p>${revoked}${facts}
    <p class="muted small">${T("注销状态依据 {t} 的签名状态列表", {t: fmtTime(r.status_as_of)})}</p></div>`);
}

export async function loadLicences() {
  renderLicenceForm();
  const s = await api("licenceStats");
  const rows = s.by_type.map((t) => html`<tr><td><code>${t.code}</code></td><td>${t.name}</td><td>${deptName(t.issuer)}</td>
    <td class="num">${fmtNum(t.starting)}</td><td class="num">${fmtNum(t.issued)}</td><td class="num">${fmtNum(t.revoked)}</td><td class="num">${fmtNum(t.total)}</td></tr>`);
  put("lic-stats", html`<h3>${T("证照总量")}</h3>
    <p>${T("{types} 类证照，{issuers} 个发证部门，{online} 类已上线；截至 {d} 存量 {start} 张，此后经平台签发 {n} 张，合计 {total} 张。", {
      types: s.types, issuers: s.issuers, online: s.online, d: s.as_of, start: fmtNum(s.starting), n: fmtNum(s.issued), total: fmtNum(s.total)})}</p>
    ${table([T("代码"), T("证照类型"), T("发证部门"), T("存量"), T("平台签发"), T("已注销"), T("合计")], rows, T("无"), 'id="lic-stats-table"')}`);
}
