"""What happens in the city: each kind of life or business event and the records it changes.

An event reads the city as it is now (the derived records with the :class:`Overlay`'s
changes on top), picks its subject with its own PRNG, and returns the record changes it
makes, department by department: a death deregisters the person at public security, adds a
cremation record at civil affairs, ends medical insurance, social insurance, subsistence
assistance and the provident-fund account, and passes real estate and vehicles on to a
surviving spouse (or locks the vehicles until the heirs transfer them); a marriage adds both
spouses' registrations and moves the wife into her husband's household. Changes are written
by the caller (:mod:`.changes`), so an event that finds no subject (after a bounded number
of draws) changes nothing.

Each kind is registered by one department (its ``owner``): its rate is set in that
department's ``services/`` definition. Rates are per 1,000 of the base (residents or
enterprises) per year; the defaults and their reasons are in :data:`KINDS`.

One module per group of events (:mod:`~.births_deaths`, :mod:`~.family`, :mod:`~.employment`,
:mod:`~.business`, :mod:`~.credit`), :mod:`~.world` for what they share; this package
registers them all in :data:`KINDS`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from exchange.departments.lifeevents.births_deaths import (
    ASSISTANCE_STOPPED,
    ESTATE_INHERITED,
    VEHICLE_LOCKED,
    birth,
    death,
    died,
)
from exchange.departments.lifeevents.business import (
    enterprise_change,
    enterprise_deregistration,
    enterprise_registration,
    tax_payment,
)
from exchange.departments.lifeevents.credit import (
    licence_issue,
    licence_revocation,
    penalty,
    permit,
)
from exchange.departments.lifeevents.employment import (
    provident_fund_change,
    social_insurance_change,
)
from exchange.departments.lifeevents.family import divorce, emigration, household_move, marriage
from exchange.departments.lifeevents.world import Change, World, beijing_day
from exchange.departments.prng import Rng

__all__ = [
    "ASSISTANCE_STOPPED",
    "ESTATE_INHERITED",
    "KINDS",
    "VEHICLE_LOCKED",
    "Change",
    "Kind",
    "World",
    "beijing_day",
    "died",
]


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of event: who registers it, over which base, how often by default, and why."""

    name: str
    owner: str
    base: Literal["people", "enterprises"]
    #: events per 1,000 of the base per year
    rate: float
    why: str
    make: Callable[[World, Rng, dt.datetime], list[Change]]


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "birth",
            "gaj",
            "people",
            9.0,
            "China's crude birth rate was 6.4 per 1,000 in 2023; Guangzhou, a young city, "
            "reports about 9-12",
            birth,
        ),
        Kind(
            "death",
            "gaj",
            "people",
            5.0,
            "China 7.9 per 1,000 in 2023; Guangzhou's younger population about 5",
            death,
        ),
        Kind(
            "marriage",
            "mzj",
            "people",
            5.4,
            "couples per 1,000 residents: 7.68 M marriages over 1.41 bn people in 2023",
            marriage,
        ),
        Kind(
            "divorce",
            "mzj",
            "people",
            1.8,
            "couples per 1,000 residents: 2.59 M divorces in 2023",
            divorce,
        ),
        Kind(
            "household_move",
            "gaj",
            "people",
            15.0,
            "moves of registration within the city (户籍迁移), about 1.5 % of residents a year",
            household_move,
        ),
        Kind(
            "social_insurance_change",
            "rsj",
            "people",
            40.0,
            "job changes, base adjustments and suspensions of the ~60 % of residents insured "
            "through an employer",
            social_insurance_change,
        ),
        Kind(
            "provident_fund_change",
            "gjj",
            "people",
            30.0,
            "withdrawals (rent, purchase) and base adjustments of fund depositors",
            provident_fund_change,
        ),
        Kind(
            "enterprise_registration",
            "scjgj",
            "enterprises",
            120.0,
            "new market entities are ~12-15 % of the stock a year in Guangzhou",
            enterprise_registration,
        ),
        Kind(
            "enterprise_change",
            "scjgj",
            "enterprises",
            100.0,
            "changes of address, capital or legal representative",
            enterprise_change,
        ),
        Kind(
            "enterprise_deregistration",
            "scjgj",
            "enterprises",
            50.0,
            "deregistrations run at about a third to a half of new registrations",
            enterprise_deregistration,
        ),
        Kind(
            "tax_payment",
            "swj",
            "enterprises",
            4000.0,
            "quarterly VAT and income-tax filings: four payments per enterprise a year",
            tax_payment,
        ),
        Kind(
            "permit",
            "zsj",
            "enterprises",
            300.0,
            "administrative permits published for double publicity",
            permit,
        ),
        Kind(
            "penalty",
            "zsj",
            "enterprises",
            30.0,
            "administrative penalties: about a tenth of the permits",
            penalty,
        ),
        Kind(
            "licence_issue",
            "zsj",
            "enterprises",
            60.0,
            "licences renewed or re-issued",
            licence_issue,
        ),
        Kind(
            "licence_revocation", "zsj", "enterprises", 5.0, "licences revoked", licence_revocation
        ),
        Kind(
            "emigration",
            "gaj",
            "people",
            3.0,
            "registrations moved out of the city (户口迁出市外): a few per 1,000 registered "
            "residents a year, fewer than move in",
            emigration,
        ),
    )
}
