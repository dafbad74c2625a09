"""How the exchange's stable codes read, in Chinese first and English: the one glossary.

The API answers with codes (``approved``, ``client.no_grant``, ``conditional`` …); people
read words. The words live in ``web/static/codes.json``, which the portal imports as a
JSON module (``glossary.js``) and the CLI reads here, so a status reads the same in the
browser and in the terminal. Kinds group the codes: ``app_status``, ``outcome``,
``sharing``, ``error`` (error codes without their side prefix), ``check`` (reasons of an
authorization check), …; ``tests/test_glossary.py`` checks every enum the API returns is
worded.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Literal

Lang = Literal["zh", "en"]

PATH = Path(__file__).parent / "web" / "static" / "codes.json"


@cache
def codes() -> dict[str, dict[str, tuple[str, str]]]:
    """kind → code → (Chinese, English)."""
    raw: dict[str, dict[str, list[str]]] = json.loads(PATH.read_text(encoding="utf-8"))
    return {
        kind: {code: (zh, en) for code, (zh, en) in table.items()} for kind, table in raw.items()
    }


def word(kind: str, code: str | None, lang: Lang = "zh") -> str:
    """The word for ``code`` of ``kind``; an unknown code reads as itself, never as nothing.

    Broker error codes name their side first (``client.item_not_granted``): the rest is
    worded, as the portal does.
    """
    if code is None or code == "":
        return ""
    table = codes().get(kind, {})
    entry = table.get(code)
    if entry is None and kind == "error" and "." in code:
        rest = code.split(".", 1)[1]
        entry = codes()["error"].get(rest) or codes()["check"].get(rest)
    if entry is None:
        return code
    return entry[0] if lang == "zh" else entry[1]
