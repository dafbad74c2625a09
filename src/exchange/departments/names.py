"""Name tables: a realistic Chinese surname distribution and given-name characters.

Surname shares are per mille of the population, roughly those of Guangdong province (陈 and
黄 far more common than nationally; 梁, 罗, 何, 郑 in the top twenty). The long tail of rarer
surnames is folded into the last entries so the weights sum to 1000.
"""

from __future__ import annotations

import bisect
from itertools import accumulate

__all__ = [
    "ETHNICITIES",
    "ETH_CUM",
    "ETH_TOTAL",
    "FEMALE_CHARS",
    "MALE_CHARS",
    "NEUTRAL_CHARS",
    "SURNAMES",
    "SURNAME_CUM",
    "SURNAME_TOTAL",
    "pick_ethnicity",
    "pick_surname",
]

SURNAMES: tuple[tuple[str, int], ...] = (
    ("陈", 96),
    ("李", 64),
    ("黄", 62),
    ("张", 50),
    ("梁", 40),
    ("林", 38),
    ("刘", 36),
    ("吴", 30),
    ("罗", 28),
    ("杨", 27),
    ("何", 26),
    ("郑", 23),
    ("王", 22),
    ("周", 19),
    ("钟", 18),
    ("叶", 17),
    ("曾", 17),
    ("谢", 16),
    ("邓", 16),
    ("冯", 15),
    ("蔡", 14),
    ("朱", 14),
    ("徐", 13),
    ("许", 13),
    ("苏", 12),
    ("赖", 12),
    ("卢", 12),
    ("彭", 11),
    ("潘", 11),
    ("方", 10),
    ("余", 10),
    ("蓝", 9),
    ("郭", 9),
    ("胡", 9),
    ("赵", 8),
    ("莫", 8),
    ("江", 8),
    ("温", 8),
    ("邱", 8),
    ("廖", 8),
    ("欧", 7),
    ("范", 7),
    ("关", 7),
    ("麦", 7),
    ("马", 7),
    ("丘", 6),
    ("严", 6),
    ("孙", 6),
    ("高", 6),
    ("谭", 6),
    ("庞", 5),
    ("简", 5),
    ("区", 5),
    ("伍", 5),
    ("汤", 5),
    ("骆", 5),
    ("冼", 4),
    ("姚", 4),
    ("韦", 4),
    ("梅", 4),
    ("古", 4),
    ("凌", 4),
    ("邝", 4),
    ("甘", 4),
    ("植", 3),
    ("龙", 3),
    ("石", 3),
    ("唐", 3),
    ("董", 3),
    ("袁", 3),
    ("沈", 3),
    ("戴", 3),
    ("魏", 3),
    ("宋", 3),
    ("熊", 3),
    ("孔", 3),
    ("程", 3),
    ("曹", 3),
    ("田", 3),
    ("文", 3),
    ("易", 3),
    ("詹", 3),
    ("劳", 2),
    ("岑", 2),
    ("司徒", 2),
    ("欧阳", 2),
    ("上官", 1),
    ("诸葛", 1),
    ("黎", 11),
    ("陆", 2),
    ("巫", 2),
    ("容", 2),
    ("招", 2),
    ("卓", 2),
    ("洪", 2),
    ("覃", 2),
    ("阮", 2),
    ("翁", 2),
    ("侯", 2),
    ("萧", 2),
)
# Cumulative weights: pick_surname's, and the vectorised columns' (departments.columns, .bulk).
SURNAME_CUM = list(accumulate(w for _, w in SURNAMES))
SURNAME_TOTAL = SURNAME_CUM[-1]

MALE_CHARS = "伟强军杰涛斌勇俊峰浩明辉志华建国家文永健鹏磊宇轩晨昊子豪嘉荣锦成海波龙坚毅炜"
FEMALE_CHARS = "芳娟敏静丽艳玲婷燕霞红秀英慧萍雪琳颖佳欣怡梓诗雅晴淑桂凤美珊蕾洁妍彤"
NEUTRAL_CHARS = "安文华晓嘉宁思子云春秋立新永清明远凯欣蓝雨家宏泽"

# 汉族 first; Guangzhou's largest minorities follow with small shares (per ten thousand).
ETHNICITIES: tuple[tuple[str, int], ...] = (
    ("汉族", 9860),
    ("壮族", 40),
    ("土家族", 20),
    ("苗族", 16),
    ("瑶族", 14),
    ("回族", 12),
    ("满族", 10),
    ("侗族", 10),
    ("畲族", 8),
    ("蒙古族", 5),
    ("朝鲜族", 5),
)
ETH_CUM = list(accumulate(w for _, w in ETHNICITIES))
ETH_TOTAL = ETH_CUM[-1]


def pick_surname(u: int) -> str:
    """The surname for a uniform integer ``u`` (any size), following :data:`SURNAMES`."""
    return SURNAMES[bisect.bisect_right(SURNAME_CUM, u % SURNAME_TOTAL)][0]


def pick_ethnicity(u: int) -> str:
    """The ethnicity for a uniform integer ``u``, following :data:`ETHNICITIES`."""
    return ETHNICITIES[bisect.bisect_right(ETH_CUM, u % ETH_TOTAL)][0]
