// 接入单位 and 目录变更: the member units, and the catalog change feed (long-polled).
import {html, put, table, fmtTime, toHTML, T, codeText} from "/ui.js";
import {S, api, dept, loadDepts, changesText, showError, Stale} from "/core.js";

export async function loadDepartments() {
  await loadDepts();
  const units = Object.values(S.depts);
  const rows = units.map((d) => html`<tr><td><code>${d.code}</code></td><td>${d.name}</td><td>${codeText("kind", d.kind)}</td><td><code>${d.credit_code || ""}</code></td>
    <td>${d.base_url ? html`<code>${d.base_url}</code>` : html`<span class="muted">${T("未接入接口")}</span>`}</td></tr>`);
  put("depts-box", html`<h2>${T("接入单位（{n}）", {n: units.length})}</h2>
    ${table([T("代码"), T("名称"), T("类别"), T("统一社会信用代码"), T("接口地址")], rows, T("无"), 'id="depts-table"')}`);
}

let feedCursor = 0, feedRunning = false;
// Another identity: the feed it followed stops, and the next one starts from the beginning.
export function stopFeed() { feedRunning = false; feedCursor = 0; }
export async function startFeed() {
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
