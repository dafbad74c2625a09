"""The one glossary: every code the API returns has its words, for the portal and the CLI."""

from __future__ import annotations

from enum import StrEnum

import pytest

from exchange import glossary
from exchange.authz.schemas import (
    ApplicationStatus,
    Delivery,
    DisputeDecision,
    GrantStatus,
    ItemOutcome,
    ReasonCode,
)
from exchange.catalog.schemas import (
    CatalogGroup,
    Classification,
    DeliveryMethod,
    ResourceType,
    SharingType,
    TopicStatus,
    UpdateCycle,
    UsageScope,
)
from exchange.members.schemas import DepartmentKind

WORDED: dict[str, type[StrEnum]] = {
    "sharing": SharingType,
    "classification": Classification,
    "group": CatalogGroup,
    "resource_type": ResourceType,
    "update_cycle": UpdateCycle,
    "method": DeliveryMethod,
    "scope": UsageScope,
    "topic_status": TopicStatus,
    "delivery": Delivery,
    "app_status": ApplicationStatus,
    "outcome": ItemOutcome,
    "reason": ReasonCode,
    "grant_status": GrantStatus,
    "decision": DisputeDecision,
    "kind": DepartmentKind,
}


@pytest.mark.parametrize("kind", sorted(WORDED))
def test_every_code_an_enum_of_the_api_can_take_is_worded_in_both_languages(kind: str) -> None:
    table = glossary.codes()[kind]
    missing = [m.value for m in WORDED[kind] if m.value not in table]
    assert not missing, f"codes.json lacks {kind}: {missing}"
    for code, (zh, en) in table.items():
        assert zh.strip(), (kind, code)
        assert en.strip(), (kind, code)
        assert zh != en or code == zh, (kind, code)  # not the English copied into the Chinese


def test_words_follow_the_language_and_unknown_codes_read_as_themselves() -> None:
    assert glossary.word("app_status", "approved") == "已通过"
    assert glossary.word("app_status", "approved", "en") == "Approved"
    # A broker error names its side first; the rest is worded like the portal does.
    assert glossary.word("error", "client.no_grant") == "无授权"
    assert glossary.word("error", "provider.timeout", "en") == "Provider timed out"
    assert glossary.word("app_status", "brand_new_status") == "brand_new_status"
    assert glossary.word("no_such_kind", "x") == "x"
    assert glossary.word("outcome", None) == ""
