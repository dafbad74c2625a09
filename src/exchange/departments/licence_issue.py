"""Licences the mock departments issue when their city changes (citychg's life events).

A marriage registered at civil affairs issues both spouses' marriage certificates (结婚证),
an enterprise registered at market regulation issues its business licence (营业执照): the
departments' systems do it as they publish the change (:mod:`~.publisher`), through
``POST /api/v1/licences`` with their own keys, so the licence counts grow with the
simulated time. The registration's own number is the issuing
reference, so publishing a change again never issues a second licence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["licence_for"]


def licence_for(
    department: str, topic: str, kind: str, key: str, record: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The issue body of the licence a change calls for (issued by ``department``), or None."""
    if record is None:
        return None
    if (
        department == "mzj"
        and topic == "marriage-registration"
        and kind == "marriage"
        and record.get("registration_type") == "结婚登记"
    ):
        husband = record["man_id_number"] == key
        return {
            "type_code": "JHZ",
            "holder_id": key,
            "holder_name": record["name"],
            "issued_on": record["registered_on"],
            "external_ref": f"{record['certificate_number']}:{key}",
            "content": {
                "name": record["name"],
                "spouse_name": record["woman_name"] if husband else record["man_name"],
                "spouse_id_number": (
                    record["woman_id_number"] if husband else record["man_id_number"]
                ),
                "registered_on": record["registered_on"],
            },
        }
    if (
        department == "scjgj"
        and topic == "enterprise-registration"
        and kind == "enterprise_registered"
    ):
        content: dict[str, Any] = {
            "name": record["name"],
            "entity_type": record["entity_type"],
            "legal_representative": record.get("legal_representative") or "未登记",
            "founded_on": record["founded_on"],
            "address": record["address"],
        }
        if isinstance(record.get("registered_capital"), int):
            content["registered_capital"] = record["registered_capital"]
        if record.get("business_scope"):
            content["business_scope"] = record["business_scope"]
        return {
            "type_code": "YYZZ",
            "holder_id": key,
            "holder_name": record["name"],
            "issued_on": record["founded_on"],
            "external_ref": f"registration:{key}",
            "content": content,
        }
    return None
