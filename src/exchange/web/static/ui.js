// Rendering helpers shared by the portal's modules. Everything rendered goes through html``
// (which escapes every interpolated value) or textContent.
import {T, codeText} from "/glossary.js";

export const $ = (id) => document.getElementById(id);
export const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
export class Raw { constructor(s) { this.s = s; } }
export function toHTML(v) {
  if (v instanceof Raw) return v.s;
  if (Array.isArray(v)) return v.map(toHTML).join("");
  if (v === null || v === undefined || v === false) return "";
  return esc(v);
}
export function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += toHTML(values[i]) + strings[i + 1];
  return new Raw(out);
}
export function put(el, content) { (typeof el === "string" ? $(el) : el).innerHTML = toHTML(content); }

// A coloured tag for a code: the glossary's words, the code itself in the tooltip.
export const tag = (kind, v, cls) => html`<span class="tag ${cls || v}" title="${v}">${codeText(kind, v)}</span>`;
// A code in running text: the glossary's words with the code after them, small.
export const label = (kind, v) => (v === null || v === undefined ? "" : html`${codeText(kind, v)} <code class="en">${v}</code>`);

// A table that says so when it is empty, rather than showing its headers alone.
export function table(head, rows, empty, attrs = "") {
  return html`<table ${new Raw(attrs)}><thead><tr>${head.map((h) => (h instanceof Raw ? h : html`<th scope="col">${h}</th>`))}</tr></thead>
    <tbody>${rows.length ? rows : html`<tr class="empty"><td colspan="${head.length}">${empty}</td></tr>`}</tbody></table>`;
}

export const TZ = "Asia/Shanghai";
export function fmtTime(s) {
  if (!s) return "";
  return new Date(s).toLocaleString("zh-CN", {timeZone: TZ, hour12: false, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"});
}
export function addDays(isoDay, n) {
  const d = new Date(isoDay + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}
export const fmtNum = (n) => Number(n || 0).toLocaleString("en-US");

export {T, codeText};
