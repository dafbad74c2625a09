"""The credit part of the enterprise-opening story (企业开办"一件事"), for ``exchange demo``.

The story (shared with the legal-person library and the licence system): a new enterprise
is registered and issued its business licence; before clearing its first import, the
customs (广州海关, ``gzhg``, holding the seeded grant on the credit lists topic) checks it
against the red and black lists. This is that step, through the SDK only, so whichever
story module tells the whole tale calls it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange.client import ExchangeClient
from exchange.credit.schemas import ListAnswer

__all__ = ["CUSTOMS", "CustomsCheck", "check_at_customs"]

#: the unit that checks (广州海关)
CUSTOMS = "gzhg"


@dataclass(frozen=True)
class CustomsCheck:
    answer: ListAnswer

    @property
    def black(self) -> bool:
        """On the black list (失信联合惩戒): the customs applies stricter inspection."""
        return any(m.name == "black" for m in self.answer.lists)

    @property
    def red(self) -> bool:
        """On the red list (守信联合激励): eligible for facilitated clearance."""
        return any(m.name == "red" for m in self.answer.lists)

    def reasons(self) -> list[str]:
        """One line per rule that holds: the list, the rule's reason and its source records."""
        return [
            f"{m.name}: {hit.reason} ({', '.join(r.decision_number for r in hit.records) or '—'})"
            for m in self.answer.lists
            for hit in m.rules
        ]


def check_at_customs(customs: ExchangeClient, credit_code: str) -> CustomsCheck:
    """The customs' list query for one enterprise (``customs`` holds ``gzhg``'s key, or any
    unit's with a grant on the credit lists topic)."""
    return CustomsCheck(customs.credit_list(credit_code))
