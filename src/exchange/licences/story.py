"""The licence part of the enterprise-opening story (企业开办"一件事"), for ``exchange demo``.

The story (shared with the legal-person library and credit double publicity): a new
enterprise of the synthetic city is registered, the market regulator (市场监管局, ``scjgj``)
issues its business licence (营业执照) through the licence system, and anybody it shows the
licence to verifies it offline. These functions are those two steps, through the SDK only,
so whichever story module tells the whole tale calls them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange.client import ExchangeClient, LicenceVerifier, Verification, fetch_licence_verifier
from exchange.departments.city import Enterprise
from exchange.licences.schemas import LicenceOut

__all__ = ["ISSUER", "BusinessLicence", "issue_business_licence", "verify_business_licence"]

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
