"""The deterministic catalog generator: core topics expanded to the real platform's shape.

One idea per module: :mod:`.editions` (the profiles, their quotas and
:func:`generate_catalog`), :mod:`.generator` (drawing and building topics),
:mod:`.candidates` (vocabulary entries turned into named candidates) and :mod:`.shape` (the
weighted tables a generated topic is drawn from). The vocabulary itself is data under
``exchange/catalog/data/`` (:mod:`exchange.catalog.vocabulary`).
"""

from exchange.catalog.generate.editions import (
    ADDITIONS_2020,
    CATALOG_2017_VERTICALS,
    PROFILES,
    TARGETS_2017,
    generate_catalog,
)

__all__ = [
    "ADDITIONS_2020",
    "CATALOG_2017_VERTICALS",
    "PROFILES",
    "TARGETS_2017",
    "generate_catalog",
]
