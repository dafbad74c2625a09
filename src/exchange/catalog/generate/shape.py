"""What a real catalog's topics look like: the weighted tables a generated topic is drawn from.

Sharing, resource type, update cycle, formats and methods by catalog group; the laws a
provider cites for a not-shared topic and the conditions it sets for a conditional one.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence

from exchange.catalog.schemas import CatalogGroup
from exchange.members.schemas import DepartmentKind

# Why a not-shared topic may not be shared: the laws a provider would cite.
STATISTICS_SECRECY = (
    "《中华人民共和国统计法》第二十五条：能够识别或者推断单个统计调查对象身份的资料不得对外提供"
)
LEGAL_BASIS: dict[str, str] = {
    "tjj": STATISTICS_SECRECY,
    "dcd": STATISTICS_SECRECY,
    "swj": "《中华人民共和国税收征收管理法》第八条：税务机关应当依法为纳税人的情况保密",
    "wjw": "《中华人民共和国执业医师法》第二十二条、《医疗机构病历管理规定》第六条",
    "cdc": "《中华人民共和国传染病防治法》第十二条：不得泄露涉及个人隐私的有关信息、资料",
    "gaj": "《中华人民共和国居民身份证法》第六条、第十九条：公民个人信息应当予以保密",
    "rmyh": "《中华人民共和国中国人民银行法》第三十四条、《征信业管理条例》第十四条",
    "jcy": "《中华人民共和国刑事诉讼法》第一百五十二条、《人民检察院刑事诉讼规则》",
    "zy": "《中华人民共和国民事诉讼法》第六十八条：涉及个人隐私的证据应当保密",
}
LEGAL_BASIS_BY_KIND: dict[DepartmentKind, str] = {
    DepartmentKind.financial: "《中华人民共和国商业银行法》第二十九条：为存款人保密",
}
LEGAL_BASIS_DEFAULT = (
    "《中华人民共和国保守国家秘密法》第九条、《政务信息资源共享管理暂行办法》"
    "（国发〔2016〕51号）第九条"
)

CONDITIONS = (
    "仅向依法履行{duty}职责的部门共享，使用前须经{short}审核同意",
    "需说明使用事由和法律依据，经{short}审核后按需共享，不得向第三方提供",
    "仅提供核验比对结果；明细数据须经{short}同意并限于{duty}用途",
    "涉及个人隐私的信息项须取得当事人书面授权，仅用于{duty}",
    "按“谁使用、谁负责”原则使用，仅限{duty}，使用情况接受{short}监督",
)
DUTIES = (
    "行政审批",
    "行政执法",
    "社会救助审核",
    "信用监管",
    "公共服务",
    "统计分析",
    "资格审查",
    "业务协同",
)

CYCLE_LABEL = {
    "irregular": "不定时",
    "realtime": "实时",
    "daily": "每日",
    "weekly": "每周",
    "monthly": "每月",
    "quarterly": "每季度",
    "semiannual": "每半年",
    "annual": "每年",
}

# (value, weight) tables: what a real catalog of each group looks like.
SHARING_WEIGHTS: dict[CatalogGroup, tuple[tuple[str, int], ...]] = {
    CatalogGroup.basic: (("unconditional", 86), ("conditional", 14)),
    CatalogGroup.departmental: (("unconditional", 22), ("conditional", 73), ("not_shared", 5)),
    CatalogGroup.special: (("unconditional", 40), ("conditional", 57), ("not_shared", 3)),
}
RESOURCE_WEIGHTS: dict[CatalogGroup, tuple[tuple[str, int], ...]] = {
    CatalogGroup.basic: (("interface", 60), ("table", 36), ("file", 4)),
    CatalogGroup.departmental: (("interface", 35), ("table", 45), ("file", 20)),
    CatalogGroup.special: (("interface", 45), ("table", 45), ("file", 10)),
}
CYCLE_WEIGHTS: dict[CatalogGroup, tuple[tuple[str, int], ...]] = {
    CatalogGroup.basic: (("realtime", 30), ("daily", 55), ("weekly", 5), ("monthly", 10)),
    CatalogGroup.departmental: (
        ("realtime", 10),
        ("daily", 30),
        ("weekly", 10),
        ("monthly", 20),
        ("quarterly", 8),
        ("annual", 7),
        ("irregular", 15),
    ),
    CatalogGroup.special: (
        ("realtime", 15),
        ("daily", 40),
        ("weekly", 10),
        ("monthly", 20),
        ("irregular", 15),
    ),
}
STATS_CYCLES = (("monthly", 40), ("quarterly", 30), ("semiannual", 5), ("annual", 25))
FORMATS = {
    "interface": ("JSON", "JSON", "XML"),
    "table": ("CSV", "XLSX", "DBF"),
    "file": ("PDF", "OFD", "ZIP"),
}
METHODS = {
    "interface": (("interface",), ("interface", "online_query")),
    "table": (("front_end_processor",), ("front_end_processor", "bulk_download")),
    "file": (("bulk_download",), ("online_query", "bulk_download")),
}
SCOPES = ("administrative_basis", "work_reference", "data_verification", "business_collaboration")
VARIANTS = ("（增量）", "（全量）", "（历史）", "（汇总）")

DATES = {"2017": (dt.date(2016, 1, 4), 660), "2020": (dt.date(2018, 1, 2), 900)}


def pick(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    values = [v for v, _ in table]
    return rng.choices(values, weights=[w for _, w in table])[0]
