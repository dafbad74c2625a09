// 运行监测: the operator's live operations dashboard. It polls one operator-only endpoint
// (GET /api/v1/audit/operations, through the portal's api()) every POLL_MS while its tab is
// open, turns the cumulative broker counters of two readings into rates, and draws with
// Apache ECharts, vendored in this package (static/vendor/echarts/, loaded on first use).
import {$, html, put, table, tag, fmtNum, codeText, T} from "/ui.js";
import {api, deptName} from "/core.js";

const POLL_MS = 2000;
const WINDOW = 150;  // samples kept for the live charts: five minutes at one every two seconds
const SIDES = ["client", "broker", "provider"];
const GROUPS = ["basic", "departmental", "special"];

let timer = 0, running = 0, charts = {}, series = [], last = null;

function loadECharts() {
  if (window.echarts) return Promise.resolve(window.echarts);
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = "/static/vendor/echarts/echarts.min.js";
    s.onload = () => resolve(window.echarts);
    s.onerror = () => reject(new Error("echarts.min.js did not load"));
    document.head.append(s);
  });
}

export function stopDashboard() {
  running += 1;  // a poll in flight sees the change and stops
  clearTimeout(timer);
  for (const c of Object.values(charts)) c.dispose();
  charts = {};
  series = [];
  last = null;
}

export async function startDashboard() {
  stopDashboard();
  const run = running;
  put("ops-box", html`<div class="ops-head"><h2>${T("运行监测")}</h2><span class="muted small" id="ops-updated" role="status"></span></div>
    <div class="stats" id="ops-stats"></div>
    <div id="ops-load" class="load-run" role="status"></div>
    <div class="charts">
      <figure><figcaption>${T("每秒调用与记录")}</figcaption><div class="chart" id="ch-rate" role="img" aria-label="${T("每秒调用与记录")}"></div></figure>
      <figure><figcaption>${T("各方错误率")}</figcaption><div class="chart" id="ch-errors" role="img" aria-label="${T("各方错误率")}"></div></figure>
      <figure><figcaption>${T("近 14 日交换记录")}</figcaption><div class="chart" id="ch-days" role="img" aria-label="${T("近 14 日交换记录")}"></div></figure>
      <figure><figcaption>${T("今日按提供单位")}</figcaption><div class="chart" id="ch-providers" role="img" aria-label="${T("今日按提供单位")}"></div></figure>
      <figure><figcaption>${T("今日按目录分组")}</figcaption><div class="chart" id="ch-groups" role="img" aria-label="${T("今日按目录分组")}"></div></figure>
      <figure><figcaption>${T("最慢的提供单位")}</figcaption><div id="ops-slow"></div></figure>
    </div>
    <div class="cols"><div id="ops-breakers"></div><div id="ops-due"></div></div>`);
  const echarts = await loadECharts();
  if (run !== running) return;
  for (const id of ["rate", "errors", "days", "providers", "groups"]) charts[id] = echarts.init($("ch-" + id), null, {renderer: "canvas"});
  await poll(run);
}

async function poll(run) {
  if (run !== running) return;
  let r;
  try {
    r = await api("operations");
  } catch (e) {
    if (run === running) put("ops-updated", String(e.message || e));
    r = null;
  }
  if (run !== running) return;
  if (r) render(r);
  timer = setTimeout(() => poll(run), POLL_MS);
}

function render(r) {
  const at = Date.parse(r.at);
  if (last && at > Date.parse(last.at)) {
    const dt = (at - Date.parse(last.at)) / 1000;
    const d = (k) => Math.max(0, (r.broker[k] - last.broker[k]) / dt);
    const calls = d("calls");
    const sides = Object.fromEntries(SIDES.map((s) => [s, Math.max(0, (r.broker.by_side[s] || 0) - (last.broker.by_side[s] || 0))]));
    const n = Math.max(1, r.broker.calls - last.broker.calls);
    series.push({t: at, calls, records: d("records"), err: Object.fromEntries(SIDES.map((s) => [s, (100 * sides[s]) / n]))});
    if (series.length > WINDOW) series.shift();
  }
  // A restarted broker starts its counters again: start the rates again with it.
  if (last && r.broker.started_at !== last.broker.started_at) series = [];
  last = r;
  const now = series.length ? series[series.length - 1] : {calls: 0, records: 0};
  const total = r.broker.calls || 1;
  const errPct = (s) => ((100 * (r.broker.by_side[s] || 0)) / total).toFixed(2);
  const stat = (id, label, value, cls = "") => html`<span class="stat ${cls}" id="${id}">${label}<b>${value}</b></span>`;
  put("ops-stats", html`
    ${stat("st-today", T("今日交换记录"), fmtNum(r.today.records))}${stat("st-total", T("累计记录"), fmtNum(r.total.records))}
    ${stat("st-calls", T("本进程调用"), fmtNum(r.broker.calls))}${stat("st-rate", T("每秒调用"), now.calls.toFixed(1))}
    ${stat("st-inflight", T("处理中"), fmtNum(r.broker.in_flight))}
    ${stat("st-errors", T("错误率（调用方 / 平台 / 提供方）"), `${errPct("client")}% / ${errPct("broker")}% / ${errPct("provider")}%`)}
    ${stat("st-breakers", T("熔断中的提供单位"), r.open_breakers.length, r.open_breakers.length ? "alarm" : "")}
    ${stat("st-reviews", T("待审 / 两日内到期 / 逾期"), `${r.reviews.pending} / ${r.reviews.due_soon} / ${r.reviews.overdue}`, r.reviews.overdue ? "alarm" : "")}
    ${stat("st-grants", T("有效授权 / 30 日内到期 / 已过期"), `${r.grants.active} / ${r.grants.expiring} / ${r.grants.expired}`)}`);
  $("ops-updated").textContent = T("更新于 {t} · 平台日 {d} · 每 {s} 秒刷新", {t: new Date(at).toLocaleTimeString("zh-CN", {hour12: false}), d: r.day, s: POLL_MS / 1000});
  $("ops-updated").dataset.samples = String(series.length);
  $("ops-updated").dataset.calls = String(r.broker.calls);

  const time = series.map((p) => new Date(p.t).toLocaleTimeString("zh-CN", {hour12: false}));
  const base = {animation: false, grid: {left: 56, right: 16, top: 30, bottom: 28}, tooltip: {trigger: "axis"}, legend: {top: 0}};
  charts.rate.setOption({...base, xAxis: {type: "category", data: time}, yAxis: {type: "value", name: "/s"},
    series: [{name: T("调用/秒"), type: "line", showSymbol: false, data: series.map((p) => +p.calls.toFixed(2))},
      {name: T("记录/秒"), type: "line", showSymbol: false, data: series.map((p) => +p.records.toFixed(2))}]});
  charts.errors.setOption({...base, xAxis: {type: "category", data: time}, yAxis: {type: "value", name: "%", max: (v) => Math.max(5, Math.ceil(v.max))},
    series: SIDES.map((s) => ({name: codeText("side", s), type: "line", showSymbol: false, data: series.map((p) => +p.err[s].toFixed(2))}))});
  charts.days.setOption({...base, xAxis: {type: "category", data: r.days.map((d) => d.day.slice(5))}, yAxis: {type: "value"},
    series: [{name: T("记录"), type: "bar", data: r.days.map((d) => d.records)}]});
  // An empty chart says so instead of drawing an empty axis or a pie of equal zeros.
  const empty = (none) => ({title: {show: none, text: T("今日暂无交换"), left: "center", top: "middle", textStyle: {fontSize: 13, color: "#888", fontWeight: "normal"}}});
  const prov = r.by_provider.slice().reverse();
  charts.providers.setOption({...base, ...empty(!prov.length), grid: {left: 110, right: 16, top: 10, bottom: 24}, legend: {show: false}, tooltip: {trigger: "axis"},
    xAxis: {type: "value"}, yAxis: {type: "category", data: prov.map((p) => deptName(p.code))},
    series: [{name: T("记录"), type: "bar", data: prov.map((p) => p.records)}]});
  const groups = GROUPS.map((g) => ({name: codeText("group", g), value: (r.by_group[g] || {records: 0}).records})).filter((g) => g.value);
  charts.groups.setOption({...empty(!groups.length), animation: false, tooltip: {trigger: "item"}, legend: {bottom: 0},
    series: [{name: T("今日按目录分组"), type: "pie", radius: ["35%", "65%"], center: ["50%", "45%"],
      data: groups}]});

  renderLoadRun(r.load_run);

  put("ops-slow", table([T("提供单位"), T("调用"), T("平均耗时"), T("最慢"), T("提供方错误")],
    r.slowest_providers.map((p) => html`<tr><td>${deptName(p.code)} <code>${p.code}</code></td><td class="num">${fmtNum(p.calls)}</td>
      <td class="num">${p.mean_ms.toFixed(1)} ms</td><td class="num">${p.slowest_ms.toFixed(0)} ms</td><td class="num">${p.errors}</td></tr>`),
    T("本进程尚无经 broker 的调用。")));
  put("ops-breakers", html`<h4>${T("熔断器")}</h4>${table([T("提供单位"), T("状态"), T("恢复试探")],
    r.open_breakers.map((b) => html`<tr><td>${deptName(b.provider)} <code>${b.provider}</code></td><td><span class="tag bad">${codeText("breaker", b.state)}</span></td><td class="num">${b.retry_after_s} s</td></tr>`),
    T("没有熔断中的提供单位。"))}`);
  put("ops-due", html`<h4>${T("审核与授权期限")}</h4><ul>
    <li>${T("待审核申请 {n} 件，两日内到期 {d} 件，已逾期 {o} 件", {n: r.reviews.pending, d: r.reviews.due_soon, o: r.reviews.overdue})}</li>
    <li>${T("有效授权 {n} 项，30 日内到期 {e} 项，已过期 {x} 项", {n: r.grants.active, e: r.grants.expiring, x: r.grants.expired})}</li></ul>`);
  for (const c of Object.values(charts)) c.resize();
}

// The load test `exchange load` reports (PUT /api/v1/load-runs/{id}): the simulated day's
// progress beside the live rates it drives.
function renderLoadRun(run) {
  if (!run) {
    put("ops-load", html`<h4>${T("负载测试")}</h4><p class="muted small">${T("在终端运行 exchange load（模拟一天的交换量），进度会显示在这里。")}</p>`);
    return;
  }
  const p = run.progress;
  const done = Math.min(1, p.elapsed_s / p.day_seconds);
  const hh = String(Math.floor(p.sim_hour)).padStart(2, "0"), mm = String(Math.floor((p.sim_hour % 1) * 60)).padStart(2, "0");
  const state = run.stale ? html`<span class="tag bad">${T("无进度报告")}</span>` : tag("load_state", run.state, {running: "pending", finished: "ok", failed: "bad"}[run.state]);
  put("ops-load", html`<h4>${T("负载测试")} ${state}</h4>
    <div class="load-bar"><progress id="load-progress" max="1" value="${done.toFixed(4)}" aria-label="${T("模拟日进度")}"></progress>
      <span>${T("模拟时刻 {t}", {t: `${hh}:${mm}`})}</span></div>
    <p class="small" id="load-detail">${T("{r} / {g} 条记录 · {rate} 条/秒（目标 {target} 条/秒）", {r: fmtNum(Math.round(p.records)), g: fmtNum(Math.round(p.target_so_far)), rate: fmtNum(Math.round(p.records_per_s)), target: fmtNum(Math.round(p.target_rate))})}</p>`);
  $("ops-load").dataset.run = run.id;
  $("ops-load").dataset.state = run.stale ? "stale" : run.state;
}
