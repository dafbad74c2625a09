"""The cast of the household economic-status verification story (``exchange demo``): who
asks for what and why, the applicant checked, and what the story reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from exchange.departments.city import City

__all__ = [
    "CONSUMER",
    "DISPUTE_GRANTS",
    "LEGAL_FUNCTION",
    "PURPOSE",
    "REQUESTS",
    "Applicant",
    "DemoReport",
    "Request",
    "pick_applicant",
]

CONSUMER = "mzj"
PURPOSE = "居民家庭经济状况核对(经申请人书面授权)"
LEGAL_FUNCTION = "《社会救助暂行办法》第十一条、《最低生活保障审核确认办法》第十五条"


@dataclass(frozen=True)
class Request:
    """One application of the story: which topic, which items, how it is answered."""

    provider: str
    slug: str
    label: str
    items: tuple[str, ...]
    key: str  # what the topic is looked up by: id_number, plate_number, credit_code
    narrow_to: tuple[str, ...] | None = None  # the reviewer approves only these


REQUESTS = (
    Request(
        "gaj",
        "household-registration",
        "户籍 household registration",
        ("id_number", "name", "household_number", "relation_to_head", "registered_address"),
        "id_number",
    ),
    Request(
        "gaj",
        "vehicle-registration",
        "机动车 vehicles",
        ("plate_number", "owner_id_number", "vehicle_type", "brand", "registered_on", "status"),
        "plate_number",
        narrow_to=("plate_number", "owner_id_number", "vehicle_type", "registered_on", "status"),
    ),
    Request(
        "ghzyj",
        "real-estate-registration",
        "不动产 real estate",
        ("id_number", "name", "property_count", "location", "floor_area", "usage"),
        "id_number",
    ),
    Request(
        "rsj",
        "social-insurance-payments",
        "社保缴费 social insurance",
        ("id_number", "name", "period", "contribution_base", "months_paid"),
        "id_number",
    ),
    Request(
        "gjj",
        "provident-fund-deposits",
        "公积金 provident fund",
        ("id_number", "name", "employer_name", "monthly_deposit", "balance", "status"),
        "id_number",
    ),
    Request(
        "scjgj",
        "enterprise-registration",
        "商事主体 business ownership",
        ("credit_code", "name", "entity_type", "legal_representative", "registered_capital"),
        "credit_code",
    ),
    Request(
        "swj",
        "tax-registration",
        "税务登记 tax registration",
        ("credit_code", "taxpayer_name", "tax_authority", "status"),
        "credit_code",
    ),
    Request(
        "swj",
        "tax-paid",
        "纳税 tax paid",
        ("credit_code", "taxpayer_name", "tax_year", "total_paid", "arrears"),
        "credit_code",
    ),
)
#: what the operator grants of the disputed tax topic: totals, not the tax breakdown
DISPUTE_GRANTS = ("credit_code", "taxpayer_name", "tax_year", "total_paid", "arrears")


@dataclass(frozen=True)
class Applicant:
    """The household member checked: an adult who owns a vehicle and runs a business."""

    id_number: str
    name: str
    plates: tuple[str, ...]
    credit_codes: tuple[str, ...]


@dataclass
class DemoReport:
    """What the demo did, for callers and tests."""

    applications: dict[str, str] = field(default_factory=dict)  # slug → final status
    granted: dict[str, list[str]] = field(default_factory=dict)  # slug → items granted
    dispute_decision: str | None = None
    applicant: Applicant | None = None
    found: dict[str, int] = field(default_factory=dict)  # slug → records found
    request_ids: list[str] = field(default_factory=list)
    audited: int = 0
    chain_ok: bool = False


def pick_applicant(city: City, *, tries: int = 5_000) -> Applicant:
    """A living adult who is an enterprise's legal representative and owns a vehicle.

    The city is derived from the exchange's seed, so the person exists in every
    department's records without asking any of them.
    """
    for e in city.sample_enterprise_indices(min(tries, max(1, city.enterprises)), seed=11):
        enterprise = city.enterprise(e)
        if enterprise.legal_rep_index is None or not city.enterprise_active(e):
            continue
        person = city.person(enterprise.legal_rep_index)
        vehicles = city.vehicle_count(person)
        if person.alive and person.age >= 18 and vehicles:
            return Applicant(
                id_number=person.id_number,
                name=person.name,
                plates=tuple(city.plate_of(person.index, k) for k in range(vehicles)),
                credit_codes=(enterprise.credit_code,),
            )
    raise LookupError("no legal representative with a vehicle in the sampled enterprises")
