// The portal's words. Every code the exchange returns (sharing types, outcomes, statuses,
// reason codes, error codes, audit outcomes…) is worded in codes.json, the glossary the CLI
// reads too (exchange.glossary); the labels of the page are here, keyed by their Chinese.
// The API keeps stable codes; only these two files word them.
// tests/web checks that every label the scripts pass to T() has its English here.

import CODES from "./codes.json" with { type: "json" };

// Labels of the page, keyed by their Chinese. A missing entry falls back to the Chinese.
const EN = {
  "电子证照": "E-licences", "证照核验": "Licence verification",
  "输入证照编号和核验码（证照二维码中的内容），按平台公钥核验签名、注销状态和有效期。": "Enter a licence number and its verification code (what its QR code carries): the signature, revocation and validity are checked against the platform's public key.",
  "证照编号": "Licence number", "核验码": "Verification code", "核验": "Verify", "核验通过": "Valid", "核验未通过": "Not valid",
  "证照类型": "Licence type", "持证主体": "Holder", "发证机关": "Issued by", "发证日期": "Issued on", "长期": "long-term",
  "注销于 {t}：{why}": "Revoked {t}: {why}", "注销状态依据 {t} 的签名状态列表": "Revocations as of the signed status list of {t}",
  "有效：平台签发、未被篡改、未注销且在有效期内": "Valid: issued by the platform, unaltered, not revoked and within its validity",
  "核验码格式不正确（不完整、输错或不是核验码）": "Not a verification code (truncated, mistyped or another format)",
  "核验码由未知的密钥签名": "Signed with a key the platform does not know",
  "签名与核验码内容不符：已被篡改": "The signature does not match the code's content: it was altered",
  "核验码属于另一个证照编号": "The code belongs to another licence number",
  "出示的照面信息与签发时不一致": "The items presented differ from those issued",
  "发证部门已注销该证照": "The issuing department revoked the licence",
  "证照已过有效期（按平台日期）": "The licence has expired (platform date)",
  "证照总量": "Licences issued",
  "订阅分发": "Subscriptions",
  "信息核验": "Verification (核验)",
  "核验申请人声明的信息与源头是否一致（如地址、收入区间），平台只回答一致、不一致或无法核验，不返回源头数据。": "Check whether what an applicant declared (an address, an income bracket) matches the source: the platform answers match, mismatch or unknown, never the source's data.",
  "记录键值": "Record key", "如公民身份号码": "e.g. an ID number", "声明内容": "Claims",
  "每行一项：信息项=声明值；数值范围写作 最小..最大。": "One per line: item=value; a numeric range as min..max.",
  "声明内容格式不正确：{line}": "Claims not understood: {line}",
  "一致": "match", "不一致": "mismatch", "无法核验": "unknown",
  "源头有该记录": "The source holds a record for the key", "源头无该记录": "The source holds no record for the key",
  "提供单位认为该键值格式不正确": "The provider rejected the key as malformed",
  "全部一致": "Everything matches", "并非全部一致": "Not everything matches", "核验结果": "Outcome",
  "核验只回答是否一致，不返回源头数据；审计记录核验了哪些信息项及结果，不记录声明值。": "Verification answers only whether the claims match, never the source's data; the audit records which items were verified and the outcomes, not the values.",
  "按授权订阅的变更自动分发：积压、延迟（源头变更到送达）、送达与重试次数、死信。": "Changes distributed automatically to the subscriptions grants allow: backlog, lag (source change to delivery), deliveries and retries, dead letters.",
  "推送": "push", "拉取": "pull", "生效": "active", "暂停": "suspended", "受阻：{why}": "blocked: {why}",
  "共 {n} 个订阅": "{n} subscriptions", "来源": "Source", "订阅单位": "Subscriber", "方式": "Delivery", "积压": "Backlog",
  "延迟": "Lag", "已送达": "Delivered", "重试": "Retried", "死信（现存/累计）": "Dead letters (held / in all)", "最近送达": "Last delivery",
  "尚无订阅": "No subscriptions yet", "死信": "Dead letters", "订阅 #{id} 的死信": "Dead letters of subscription #{id}",
  "多次推送失败或超时的事件：修复接收端后重试，或确认后丢弃。": "Events whose pushes failed or timed out too often: retry them once the endpoint is fixed, or discard them.",
  "事件编号": "Event id", "尝试次数": "Attempts", "转入死信": "Dead since", "全部重试": "Retry all", "全部丢弃": "Discard all",
  "已重新投递 {n} 条": "{n} queued for delivery again", "已丢弃 {n} 条": "{n} discarded",
  "{types} 类证照，{issuers} 个发证部门，{online} 类已上线；截至 {d} 存量 {start} 张，此后经平台签发 {n} 张，合计 {total} 张。": "{types} licence types, {issuers} issuing departments, {online} online; {start} issued by {d}, {n} issued through the platform since, {total} in all.",
  "发证部门": "Issuer", "存量": "By the profile date", "平台签发": "Issued since", "已注销": "Revoked", "合计": "Total",
  "基础信息库": "Base libraries", "人口基础信息库": "Population library", "法人基础信息库": "Legal-person library",
  "人口、法人基础信息按一数一源从责任部门汇集：各来源的汇集进度与合计，以及两个来源不一致时的冲突清单。": "Basic data of people and legal persons gathered from the department that is each element's one source: progress per source and in total, and the conflicts found when two sources disagree.",
  "两库累计汇集 {g} 条，待处理冲突 {o} 条。": "{g} records gathered into both libraries, {o} conflicts open.",
  "{n} 个来源，累计汇集 {g} 条；冲突 {o} 条待处理、{r} 条已处理。": "{n} sources, {g} records gathered; conflicts: {o} open, {r} resolved.",
  "按{key}": "by {key}", "身份证号码": "ID number",
  "增量汇集": "Incremental pass", "全量汇集": "Full pass", "增量": "incremental", "全量": "full",
  "增量汇集已开始。": "An incremental pass started.", "全量汇集已开始。": "A full pass started.",
  "汇集中：本轮已汇集 {n} 条，已用 {s} 秒": "Gathering: {n} records so far, {s} s",
  "上一轮（{kind}）：汇集 {n} 条，清除源头已无的 {d} 条，用时 {s} 秒（其中质量核对 {c} 秒），结束于 {t}": "Last pass ({kind}): {n} records gathered, {d} no longer at their source removed, in {s} s (quality check {c} s), ended {t}",
  "源头已无而清除": "Removed (gone at source)", "两源已一致": "Sources agree again", "源头已无此记录": "Record gone at its source", "本轮清除 {n} 条": "{n} removed by the last full pass",
  "尚未汇集": "Nothing gathered yet", "跳过": "Skipped", "尚无来源": "No sources yet",
  "来源主题": "Source topic", "角色": "Role", "本轮进度": "This pass", "本轮汇集": "Gathered this pass", "累计汇集": "Gathered in all",
  "变更事件": "Change events", "最近汇集": "Last gathered", "进度": "Progress",
  "源头": "source", "核对": "witness", "待汇集": "not yet gathered", "汇集中": "gathering", "已完成": "done", "等待授权": "awaiting grant",
  "出错": "error", "已撤出目录": "withdrawn from the catalog",
  "冲突清单（校核纠错）": "Conflicts (verification and correction)",
  "两个来源对同一数据元的值不一致，或已死亡人员仍在参保：由源头部门核实更正，或确认源头值。": "Two sources disagree on an element, or a deceased person is still insured: the source department checks and corrects it, or confirms its value.",
  "库": "Library", "待处理": "open", "已处理": "resolved", "两源不一致": "sources disagree", "已死亡仍参保": "deceased, still insured",
  "主体": "Subject", "源头值": "Source's value", "另一来源的值": "Other source's value", "发现时间": "Found",
  "没有冲突": "No conflicts", "处理": "Resolve", "处理冲突 #{id}": "Resolve conflict #{id}", "处理结果": "Resolution", "说明": "Note", "提交": "Submit",
  "已在源头更正": "corrected at the source", "以源头为准": "source's value confirmed", "并非错误": "not an error",
  "冲突 #{id} 已处理：{how}": "Conflict #{id} resolved: {how}",
  "信用双公示": "Credit publicity", "行政许可和行政处罚决定按统一社会信用代码或名称检索；自然人身份证号码已脱敏，超过公示期的处罚不再显示。": "Permit and penalty decisions by credit code or name; natural persons' ID numbers are masked and penalties past their publicity period are not shown.",
  "统一社会信用代码或名称": "Credit code or name", "红黑名单核查": "Red/black list check", "行政许可": "Permit", "行政处罚": "Penalty",
  "决定文书号": "Decision number", "行政相对人": "Party", "许可类别 / 处罚类别": "Category", "内容": "Content", "罚款（元）": "Fine (yuan)",
  "决定日期": "Decided on", "决定机关": "Authority", "请输入统一社会信用代码": "Enter a unified social credit code",
  "黑名单（失信联合惩戒）": "Black list (joint punishment)", "红名单（守信联合激励）": "Red list (joint reward)", "列入至 {d}": "listed until {d}",
  "不在红黑名单上": "On neither list", "公示情况": "Publication",
  "{units} 个单位报送，行政许可 {p} 条、行政处罚 {x} 条，公示率 {r}，按时率 {o}。": "{units} units submitting, {p} permits and {x} penalties, published {r}, on time {o}.",
  "单位": "Unit", "逾期报送": "Late", "未报送": "Missing", "公示率": "Published", "按时率": "On time",
  "exchange · 政务信息共享平台": "exchange · government information-sharing platform",
  "身份": "Identity", "切换身份": "Switch identity", "API key": "API key", "粘贴 key": "Paste a key",
  "粘贴 Bearer key（启动横幅中的 operator / demo key）": "Paste a bearer key (the banner's operator / demo key)",
  "显示": "Show", "隐藏": "Hide", "登录": "Sign in", "退出": "Sign out", "语言": "Language",
  "未登录：请选择身份或粘贴 key": "Not signed in: choose an identity or paste a key", "未登录：请用本单位 key 登录": "Not signed in: sign in with your department's key",
  "key 无效": "Invalid key", "— 选择身份 —": "— choose an identity —", "最近使用": "Recent",
  "演示部门（需粘贴 key）": "Demo departments (paste their key)", "粘贴 key…": "paste key…", "平台运营方": "Platform operator",
  "从列表移除当前 key": "Remove the current key from the list", "（当前 key）": "(current key)",
  "请粘贴 operator key（启动横幅 Operator key，或 .exchange/operator.key）": "Paste the operator key (the banner's Operator key, or .exchange/operator.key)",
  "请粘贴 {name} ({code}) 的 key：启动横幅中的 Demo key，或 exchange.security.demo_key(operator_key, \"{code}\")": "Paste the key of {name} ({code}): the banner's demo key, or exchange.security.demo_key(operator_key, \"{code}\")",
  "请先在“身份”中选择身份或粘贴 key。": "Choose an identity or paste a key first.",
  "平台时间 {t}（北京）": "Platform time {t} (Beijing)", " · 已推进 {d} 天": " · advanced {d} days",
  "目录检索": "Catalog", "我的申请": "My applications", "审核待办": "Reviews", "争议协调": "Disputes", "授权管理": "Grants",
  "数据交换": "Exchange", "审计日志": "Audit", "平台时钟": "Clock", "接入单位": "Members", "目录变更": "Catalog changes", "运行监测": "Operations",
  "关键词，如 户籍、企业、婚姻": "Keywords, e.g. 户籍 企业 婚姻", "所有分组": "All groups", "所有共享类型": "All sharing types",
  "全部": "All", "提供部门代码 (gaj…)": "Provider code (gaj…)", "检索": "Search", "上一页": "Previous", "下一页": "Next",
  "关键词": "Keywords", "目录分组": "Catalog group", "共享类型": "Sharing type", "状态": "Status", "提供部门": "Provider",
  "资源代码": "Resource code", "名称": "Name", "类型": "Type", "共 {n} 条，第 {a}–{b} 条": "{n} in all, {a}–{b}", "共 0 条": "none",
  "字段": "Field", "数据元": "Data element", "源": "source", "转共享": "re-shared", "键": "key",
  "分组": "Group", "分类": "Classification", "格式": "Format", "更新周期": "Update cycle", "版本": "Version",
  "共享": "Sharing", "法律依据": "Legal basis", "使用范围": "Usage scopes", "共享方式": "Sharing methods", "废置原因": "Retired because",
  "版本历史": "Version history", "首次登记": "first registered", "新增": "added", "删除": "removed", "修改": "changed",
  "这是本单位提供的资源，无需申请。": "Your department provides this topic: no application needed.",
  "申请共享": "Apply for sharing", "代为申请单位": "Apply on behalf of", "使用范围（用途）": "Purpose scope", "目录允许": "offered by the catalog",
  "用途说明": "Purpose", "履职依据": "Legal function", "有效期": "Validity", "至": "to", "留空为今天（平台时间）": "empty: today (platform time)",
  "每日限额": "Daily quota", "条/天，留空为不限": "records/day, empty for no limit", "交付方式": "Delivery", "提交申请": "Submit",
  "居民家庭经济状况核对（最低生活保障审核）": "Household economic-status check (minimum living allowance)",
  "《社会救助暂行办法》第十一条": "Interim Measures on Social Assistance, art. 11",
  "申请 #{id} 已提交": "Application #{id} submitted", "申请 #{id} 已提交。": "Application #{id} submitted.",
  "在“我的申请”中查看": "Open in My applications", "查看授权 #{id}": "Open grant #{id}",
  "全部状态": "All statuses", "仅逾期": "Overdue only", "资源代码 101001001/000001": "Resource code 101001001/000001", "刷新": "Refresh",
  "已逾期 {d} 天": "{d} days overdue", "剩 {d} 天": "{d} days left", "日历日；期限本身按工作日计算": "calendar days; the deadline counts working days",
  "共 {n} 件": "{n} in all", "（运营方可见全部）": " (the operator sees all)", "审核期限按工作日计算，逾期以平台时钟为准。": "Deadlines count working days; overdue by the platform clock.",
  "编号": "No.", "主题": "Topic", "申请单位": "Consumer", "提供单位": "Provider", "信息项结果": "Item outcomes", "提交时间": "Submitted",
  "审核期限": "Review deadline", "授权 / 争议": "Grant / dispute", "授权 #{id}": "grant #{id}", "争议 #{id}": "dispute #{id}",
  "暂无申请。可在“目录检索”中打开资源并提交申请。": "No applications yet: open a topic in the Catalog and apply.",
  "{n} 项已授权": "{n} granted", "{n} 项有条件共享，待 {who} 审核，期限 {t}（10 个工作日）": "{n} conditional, waiting for {who}'s review until {t} (10 working days)",
  "{n} 项不予共享": "{n} refused", "{n} 项未通过": "{n} rejected", "已逾期": "overdue", "结果": "Outcome", "理由": "Reason", "说明 / 依据": "Text / legal basis",
  "申请 #{id}": "Application #{id}", "申请单位 → 提供单位": "Consumer → provider", "用途": "Purpose", "每日限额 · 交付": "Quota · delivery",
  "条/天": "records/day", "不限": "no limit", "提交 · 审核期限": "Submitted · deadline", "审核": "Reviewed", "逐项结果": "Outcome per item",
  "查看争议 #{id}": "Open dispute #{id}", "办理记录": "History", "信息项": "Items", "授权": "Grant", "有效期至": "Valid until", "不晚于申请": "not after the request",
  "不高于申请（{q}）": "not above the request ({q})", "部分通过（去掉信息项）时必填": "required when leaving items out", "审核通过": "Approve", "通过的信息项": "Items approved", "通过": "Approve",
  "退回": "Reject", "退回全部待审信息项；依规定必须说明理由。": "Rejects every pending item; a reason is required.", "退回理由": "Reason for rejecting",
  "如：申请用途不属于本资源的共享条件": "e.g. the purpose is outside the topic's sharing conditions", "提起争议协调": "Open a dispute", "争议信息项": "Items disputed",
  "为何履职确需该数据": "Why your duties need this data", "提起争议": "Dispute",
  "申请 #{id} 已审核：": "Application #{id} reviewed: ", "申请 #{id} 已退回：": "Application #{id} rejected: ",
  "退回必须说明理由": "A rejection needs a reason", "争议 #{id} 已提起，双方可在协调记录中沟通，由平台运营方决定。": "Dispute #{id} opened: both sides may write in its thread; the operator decides.",
  "争议": "Dispute", "打开": "Open", "争议编号": "Dispute no.", "提起时间": "Opened", "协调决定": "Decision",
  "暂无争议。申请单位可在被拒绝或退回的申请详情中提起争议。": "No disputes. A consumer may dispute refused or rejected items from the application.",
  "双方": "Parties", "（申请）": " (consumer)", "（提供）": " (provider)", "提起理由": "Reason given", "授权信息项": "Items granted",
  "协商记录": "Thread", "暂无消息。": "No messages yet.", "发送协商消息（双方与运营方可见）": "Write to the thread (both sides and the operator see it)", "发送": "Send",
  "运营方协调决定": "The operator's decision", "决定": "Decision", "部分授权的信息项": "Items granted in part", "（仅部分授权）": "(partial only)", "作出决定": "Decide",
  "协商不成的，由平台运营方（主管部门）协调决定：切换到运营方身份即可作出决定。": "If the parties do not agree, the operator decides: switch to the operator to decide.",
  "协调决定必须说明理由": "A decision needs a reason", "争议 #{id} 已决定：": "Dispute #{id} decided: ",
  "{n} 项": "{n} items", "更新": "Updated", "共 {n} 项；“已过期”指有效期最后一天已过（按平台时钟）。": "{n} in all; expired means the last valid day has passed (platform clock).",
  "暂无授权。": "No grants.", "用途 · 依据": "Purpose · legal function", "有效期 · 限额": "Validity · quota", "状态说明": "Status reason", "创建 · 更新": "Created · updated",
  "用此授权交换查询": "Query with this grant", "查看相关审计": "Related audit entries", "撤销理由": "Reason for revoking",
  "如：用途已终止 / 发现超范围使用": "e.g. the purpose ended / use beyond the grant", "撤销授权": "Revoke", "撤销必须说明理由": "A revocation needs a reason",
  "授权 #{id} 已撤销：此后的校验与交换返回 grant_revoked。": "Grant #{id} revoked: checks and exchanges now answer grant_revoked.",
  "授权校验": "Authorization check", "信息项，逗号分隔（空 = 全部已授权项）": "Items, comma-separated (empty: every granted item)", "记录数": "Records", "校验": "Check",
  "允许": "Allowed", "拒绝": "Denied", "原因": "Reason", "今日剩余额度": "Quota left today",
  "数据交换以申请单位的身份进行：请在“身份”中切换到持有授权的部门（运营方可在“审计日志”中查看全部交换）。": "Exchanges are made as a consuming department: switch to one that holds a grant (the operator sees every exchange in Audit).",
  "（无有效授权）": "(no active grant)", "本单位暂无有效授权：先在“目录检索”中申请。": "Your department holds no active grant: apply in the Catalog first.",
  "查询键": "Keys", "每行一个键（身份证号 / 统一社会信用代码 …），最多 1000 个": "One key a line (ID number, credit code…), at most 1,000",
  "取样本键": "Sample keys", "（通过 broker export 取 3 条记录的键；计入限额与审计）": "(three records' keys through the broker's export; counted and audited)",
  "业务事项": "Business case", "如：低保审核 2026-0001": "e.g. 低保审核 2026-0001", "查询": "Query",
  "已授权": "granted", "未授权": "not granted", "未授权：勾选将被拒绝": "not granted: asking for it is denied",
  "不勾选 = 全部已授权信息项；响应只含已授权的信息项，无论提供方返回什么。": "None ticked: every granted item. Answers carry granted items only, whatever the provider returns.",
  "已取 {n} 个样本键": "{n} sample keys taken", "，另加 1 个校验位错误的身份证号以演示 invalid": ", plus one ID number with a wrong check digit to show invalid",
  "交换被拒绝或失败": "Exchange denied or failed", "在审计日志中查看此请求": "Show this request in the audit log", "交换结果": "Result", "在审计日志中查看": "Show in the audit log",
  "返回 {n} 条记录 · 未找到 {nf} · 格式错误 {iv}": "{n} records · {nf} not found · {iv} invalid", "返回的信息项": "Items returned",
  "未返回（未授权或未请求）": "Not returned (not granted or not asked)", "未找到": "Not found", "格式错误": "Invalid",
  "申请单位代码": "Consumer code", "提供单位代码": "Provider code", "结果（ok / client.…）": "Outcome (ok / client.…)",
  "今日交换量": "Today's exchanges", "今日调用": "Calls today", "今日交换记录": "Records today", "累计调用": "Calls in all", "累计记录": "Records in all",
  "按提供单位": "By provider", "按申请单位": "By consumer", "按主题": "By topic", "调用": "Calls", "记录": "Records", "无": "None",
  "校验哈希链": "Verify the hash chain", "仅运营方可校验": "Only the operator verifies", "完整": "Intact", "共 {n} 条，最后 seq {s}": "{n} entries, last seq {s}",
  "异常": "Broken", "第一个问题 seq {s}：{m}": "first problem at seq {s}: {m}",
  "按哈希链顺序（seq）": "In chain order (seq)", "从 seq {s} 之后": "after seq {s}", "从头": "from the start", "{n} 条": "{n} entries", "还有更多": "more follow",
  "时间": "Time", "类型 ": "Kind", "耗时": "Latency", "暂无审计记录：在“数据交换”中做一次查询。": "No audit entries yet: make a query in Exchange.", "已是最后一页。": "That was the last page.",
  "平台时间": "Platform time", "北京时间 · 今天 {d}": "Beijing · today {d}", "偏移：{d} 天（{s} 秒）。审核期限、逾期标记与授权到期都以平台时钟为准。": "Offset: {d} days ({s} s). Review deadlines, overdue flags and grant expiry follow the platform clock.",
  "推进时钟": "Advance the clock", "推进": "Advance", "仅平台运营方可推进时钟（切换到运营方身份）。": "Only the operator advances the clock (switch to the operator).",
  "逾期未审": "Overdue reviews", "待审 {n}": "{n} pending", "申请 → 提供": "Consumer → provider", "已过期授权": "Expired grants",
  "暂无待审核的申请。": "No pending reviews.", "暂无已过期的授权。": "No expired grants.",
  "平台时钟已推进 {by}，现在 {t}（北京）。": "Platform clock advanced {by}: now {t} (Beijing).",
  "接入单位（{n}）": "Member units ({n})", "代码": "Code", "类别": "Kind", "统一社会信用代码": "Credit code", "接口地址": "API address", "未接入接口": "no API registered",
  "目录变更订阅：实时显示登记、变更与废置。": "Catalog change feed: registrations, changes and retirements as they happen.", "事件": "Event", "操作者": "By", "变更": "Changes",
  "暂无变更。": "No changes yet.", "关闭": "Close", "错误": "Error", "详情": "Detail", "请求编号": "request id",
  "跳到正文": "Skip to content", "主导航": "Main navigation",
  "检索结果": "Search results", "逾期": "overdue", "仅看": "Only",
  "：": ": ", "、": ", ",
  "今日暂无交换": "No exchanges today", "共 {n} 条": "{n} in all", "申请": "Application",
  "基础信息": "Basic information", "部门信息": "Departmental information", "专项信息": "Special-project information",
  "无条件共享": "Unconditional", "有条件共享": "Conditional", "不予共享": "Not shared", "已发布": "Published", "已废置": "Retired",
  "每秒调用与记录": "Calls and records per second", "各方错误率": "Error rate by side", "近 14 日交换记录": "Records, last 14 days",
  "今日按提供单位": "Today by provider", "今日按目录分组": "Today by catalog group", "最慢的提供单位": "Slowest providers",
  "本进程调用": "Calls (this process)", "每秒调用": "Calls/s", "处理中": "In flight", "错误率（调用方 / 平台 / 提供方）": "Errors (caller / exchange / provider)",
  "熔断中的提供单位": "Open circuit breakers", "待审 / 两日内到期 / 逾期": "Pending / due in 2 days / overdue",
  "有效授权 / 30 日内到期 / 已过期": "Active grants / expiring in 30 days / expired",
  "更新于 {t} · 平台日 {d} · 每 {s} 秒刷新": "Updated {t} · platform day {d} · every {s} s", "调用/秒": "calls/s", "记录/秒": "records/s",
  "平均耗时": "Mean", "最慢": "Slowest", "提供方错误": "Provider errors", "本进程尚无经 broker 的调用。": "No broker calls in this process yet.",
  "熔断器": "Circuit breakers", "恢复试探": "Trial in", "没有熔断中的提供单位。": "No open circuit breaker.", "审核与授权期限": "Review and grant deadlines",
  "待审核申请 {n} 件，两日内到期 {d} 件，已逾期 {o} 件": "{n} applications pending review, {d} due within two days, {o} overdue",
  "有效授权 {n} 项，30 日内到期 {e} 项，已过期 {x} 项": "{n} active grants, {e} expiring within 30 days, {x} expired",
  "负载测试": "Load test", "无进度报告": "No report lately", "模拟日进度": "Progress of the simulated day", "模拟时刻 {t}": "Simulated time {t}",
  "在终端运行 exchange load（模拟一天的交换量），进度会显示在这里。": "Run exchange load in a terminal (a simulated day's volume): its progress shows here.",
  "{r} / {g} 条记录 · {rate} 条/秒（目标 {target} 条/秒）": "{r} / {g} records · {rate} records/s (target {target}/s)",
};

let current = localStorage.getItem("exchange.lang") === "en" ? "en" : "zh";

export function lang() { return current; }
export function setLang(l) {
  current = l === "en" ? "en" : "zh";
  localStorage.setItem("exchange.lang", current);
  document.documentElement.lang = current === "en" ? "en" : "zh-CN";
}

// T("共 {n} 条", {n: 3}): the label in the current language, with {name} filled in.
export function T(zh, vars) {
  const text = current === "en" && EN[zh] !== undefined ? EN[zh] : zh;
  return vars ? text.replace(/\{(\w+)\}/g, (m, k) => (vars[k] === undefined ? m : String(vars[k]))) : text;
}

// codeText("sharing", "conditional") → 有条件共享 / Conditional; unknown codes stay as they are.
export function codeText(kind, value) {
  if (value === null || value === undefined || value === "") return "";
  const table = CODES[kind] || {};
  let entry = table[value];
  // Broker error codes name their side first (client.item_not_granted): word the rest.
  if (!entry && kind === "error" && String(value).includes(".")) {
    const rest = String(value).split(".").slice(1).join(".");
    entry = CODES.error[rest] || CODES.check[rest];
  }
  if (!entry) return String(value);
  return current === "en" ? entry[1] : entry[0];
}

export function codesOf(kind) { return Object.keys(CODES[kind] || {}); }

// Static labels of index.html: data-t (text), data-t-ph (placeholder), data-t-label (aria-label, title).
export function applyStatic(root = document) {
  for (const el of root.querySelectorAll("[data-t]")) el.textContent = T(el.dataset.t);
  for (const el of root.querySelectorAll("[data-t-ph]")) el.placeholder = T(el.dataset.tPh);
  for (const el of root.querySelectorAll("[data-t-label]")) { el.setAttribute("aria-label", T(el.dataset.tLabel)); el.title = T(el.dataset.tLabel); }
}
