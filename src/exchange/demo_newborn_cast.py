"""The cast of the newborn story (``exchange demo --story newborn``): the topic and its
provider, the departments that receive a birth and how, the bank that verifies, and what
the story reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BANK", "CONSUMERS", "PROVIDER", "TOPIC", "Arrival", "Consumer", "NewbornReport"]

TOPIC = "household-registration"
PROVIDER = "gaj"
BANK = "icbc"


@dataclass(frozen=True)
class Consumer:
    code: str
    label: str
    delivery: str  # push | pull
    items: tuple[str, ...]
    purpose: str
    legal_function: str


CONSUMERS: tuple[Consumer, ...] = (
    Consumer(
        "wjw",
        "市卫健委 health commission",
        "push",
        ("id_number", "name", "sex", "birth_date", "registered_address"),
        "新生儿健康档案建立与预防接种通知",
        "《母婴保健法》第二十四条、《疫苗管理法》第四十七条",
    ),
    Consumer(
        "ybj",
        "市医保局 medical security",
        "push",
        ("id_number", "name", "sex", "birth_date", "household_number"),
        "新生儿参加城乡居民基本医疗保险",
        "《社会保险法》第二十五条",
    ),
    Consumer(
        "mzj",
        "市民政局 civil affairs",
        "pull",
        ("id_number", "name", "birth_date", "household_number", "relation_to_head"),
        "家庭人口变动后的救助待遇核定",
        "《社会救助暂行办法》第十一条",
    ),
)


@dataclass
class Arrival:
    """One department's receipt of the birth."""

    seconds: float
    event: dict[str, Any]


@dataclass
class NewbornReport:
    """What the story did, for callers and tests."""

    child: str | None = None
    granted: dict[str, list[str]] = field(default_factory=dict)  # consumer → items
    subscriptions: dict[str, int] = field(default_factory=dict)  # consumer → id
    arrivals: dict[str, Arrival] = field(default_factory=dict)  # consumer → arrival
    lag_ms: dict[str, int | None] = field(default_factory=dict)
    audited: int = 0
    chain_ok: bool = False
    #: the bank's verifications: declared address → outcome (None: the exchange has none)
    verified: dict[str, str] | None = None
