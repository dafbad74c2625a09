"""The steps of the enterprise-opening story (企业开办"一件事") that other stories and tests
reuse, through the SDK only: the market regulator (市场监管局, ``scjgj``) issues the new
enterprise's business licence (营业执照) through the licence system; anybody it shows the
licence to verifies it offline; the customs (广州海关, ``gzhg``, holding the seeded grant on
the credit lists topic) checks it against the red and black lists before clearing its
first import. ``exchange demo --story enterprise`` (:mod:`exchange.demo_enterprise`) tells
the whole tale with them.

They sit beside the stories, not in the licence and credit packages: a story drives the
platform through its SDK, which builds on those packages, so a domain package holding one
would import upward.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange.client import ExchangeClient, LicenceVerifier, Verification, fetch_licence_verifier
from exchange.credit.schemas import ListAnswer
from exchange.departments.city import Enterprise
from exchange.licences.schemas import LicenceOut

__all__ = [
    "CUSTOMS",
    "ISSUER",
    "BusinessLicence",
    "CustomsCheck",
    "check_at_customs",
    "issue_business_licence",
    "verify_business_licence",
]

#: the business licence's issuing department and type
ISSUER = "scjgj"
TYPE_CODE = "YYZZ"


@dataclass(frozen=True)
class BusinessLicence:
    licence: LicenceOut
    #: False when the enterprise's licence had been issued by an earlier run (same reference)
    created: bool


def issue_business_licence(regulator: ExchangeClient, enterprise: Enterprise) -> BusinessLicence:
    """Issue ``enterprise``'s business licence as the market regulator (``regulator`` holds
    ``scjgj``'s key). The enterprise's registration is the reference, so telling the story
    again returns the licence issued the first time instead of a second one."""
    before = regulator.licence_stats().issued
    licence = regulator.issue_licence(
        TYPE_CODE,
        enterprise.credit_code,
        enterprise.name,
        {
            "name": enterprise.name,
            "entity_type": enterprise.entity_type,
            "legal_representative": enterprise.legal_rep_name or "未登记",
            "registered_capital": enterprise.registered_capital,
            "founded_on": enterprise.founded_on.isoformat(),
            "address": enterprise.address,
            "business_scope": enterprise.business_scope,
        },
        external_ref=f"story-enterprise-{enterprise.credit_code}",
    )
    return BusinessLicence(licence, regulator.licence_stats().issued > before)


def verify_business_licence(
    base_url: str, licence: LicenceOut, *, verifier: LicenceVerifier | None = None
) -> Verification:
    """Verify the licence as a third party would: the platform's public key and status
    list (no key needed), then its number and code offline, items included."""
    verifier = verifier or fetch_licence_verifier(base_url)
    return verifier.verify(licence.number, licence.code, content=licence.content)


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
