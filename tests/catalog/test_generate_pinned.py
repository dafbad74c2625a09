"""The generated catalog, pinned byte for byte.

The generator's vocabulary lives in ``src/exchange/catalog/data/*.yaml`` and its algorithm in
``exchange.catalog.generate``; a change to either that alters a single generated topic changes
these digests. When the change is meant (a new vocabulary entry, a corrected name), update the
digest in the same commit and say why there.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from exchange.catalog.content import load_core_topics, load_units
from exchange.catalog.generate import generate_catalog

CATALOG = Path(__file__).resolve().parents[2] / "catalog"

# (profile, seed) → sha256 of the catalog as canonical JSON, measured before the vocabulary
# moved from string mini-languages in the module to YAML.
PINNED = {
    ("guangzhou-2017", 2020): "fcb974ccf7be961808b9a8f5b11f7885556a1a7245270414e6baa88d7d5b3a29",
    ("platform-2020", 2020): "9738bbd9d05d361836abcdb214396e927626887cd9bcc8f395bf490120b49f78",
    ("platform-2020", 20170701): "a2c168ba24aab7a280aa54101bda76ac296bdaebc57274ab5e17ce621e574e58",
}


def digest(profile: str, seed: int) -> str:
    units = load_units(CATALOG)
    topics = generate_catalog(profile, units, load_core_topics(CATALOG, units), seed)
    canonical = json.dumps(
        [t.model_dump(mode="json") for t in topics],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(("profile", "seed"), sorted(PINNED))
def test_generated_catalog_is_unchanged(profile: str, seed: int) -> None:
    assert digest(profile, seed) == PINNED[profile, seed]
