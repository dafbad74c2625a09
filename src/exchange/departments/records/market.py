"""Market regulation: enterprise registration."""

from __future__ import annotations

from exchange import ids
from exchange.departments.city import City, Enterprise
from exchange.departments.records.generator import Record

ENTERPRISE_FIELDS = (
    "credit_code",
    "name",
    "entity_type",
    "legal_representative",
    "legal_representative_id_number",
    "industry",
    "address",
    "registered_capital",
    "founded_on",
    "registration_authority",
    "status",
    "business_scope",
)


def enterprise_registration(_city: City, e: Enterprise) -> Record:
    """商事主体基础信息: the source of every enterprise.* element."""
    return {
        "credit_code": e.credit_code,
        "name": e.name,
        "entity_type": e.entity_type,
        "legal_representative": e.legal_rep_name,
        "legal_representative_id_number": e.legal_rep_id_number,
        "industry": e.industry,
        "address": e.address,
        "registered_capital": e.registered_capital,
        "founded_on": e.founded_on.isoformat(),
        "registration_authority": f"广州市{ids.AREA_NAMES[e.district]}市场监督管理局",
        "status": e.status,
        "business_scope": e.business_scope,
    }
