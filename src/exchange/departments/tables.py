"""Exportable topics' records in bulk: a range of source rows derived as columns.

Each builder is the bulk twin of one record generator in
:mod:`exchange.departments.records` (whose scalar code stays the definition): it derives
the rows ``[start, stop)`` from the columns of :mod:`exchange.departments.people_columns`
and :mod:`exchange.departments.firm_columns` and answers a :class:`Table`, one column per
field in the generator's field order, most of them already the JSON of each value as a
byte matrix (:mod:`exchange.departments.jsonbytes`), so an export writes its NDJSON
without a Python object per value.

Every Rng draw of the scalar code is a row of :func:`columns.draws`; a draw that the scalar
code makes only on some branch moves the later ones, which the builders follow with
``np.where`` over draw rows. The tests compare each table record by record with the single
lookups of its keys, for every exportable topic.

The builders, by idea: :mod:`.people_tables`, :mod:`.vehicle_tables`, :mod:`.birth_tables`,
:mod:`.employer_tables`, :mod:`.firm_tables`.
"""

from __future__ import annotations

from collections.abc import Callable

from exchange.departments import bulk, firm_tables
from exchange.departments.birth_tables import birth_certificate
from exchange.departments.city import City
from exchange.departments.employer_tables import provident_fund, social_insurance_enrolment
from exchange.departments.ndjson import Table
from exchange.departments.people_tables import (
    household_registration,
    marriage_registration,
    medical_insurance,
    real_estate,
)
from exchange.departments.records import GENERATORS
from exchange.departments.vehicle_tables import vehicle_registration

__all__ = ["TABLES", "Table", "warm"]

#: Bulk twins of the exportable generators, by generator name.
TABLES: dict[str, Callable[[City, int, int], Table]] = {
    "household_registration": household_registration,
    "vehicle_registration": vehicle_registration,
    "enterprise_registration": firm_tables.enterprise_registration,
    "marriage_registration": marriage_registration,
    "social_insurance_enrolment": social_insurance_enrolment,
    "provident_fund": provident_fund,
    "real_estate": real_estate,
    "tax_registration": firm_tables.tax_registration,
    "birth_certificate": birth_certificate,
    "medical_insurance": medical_insurance,
    "e_licence": firm_tables.e_licence,
    "credit_publicity": firm_tables.credit_publicity,
}


def warm(city: City) -> None:
    """Make every table's lookup tables now (each birth day's digits, the JSON of every
    date, the digit quads, the streets and vocabularies: built once per process, on first
    use) by deriving a few rows of each table, and keep the city's register of couples and
    jobs (:func:`bulk.keep_register`): an export worker does it at its start, which its
    first export of each topic paid before (the dates alone ~50 ms)."""
    bulk.warm()
    bulk.keep_register(city)
    for name, build in TABLES.items():
        build(city, 0, 64).block(GENERATORS[name].fields)
