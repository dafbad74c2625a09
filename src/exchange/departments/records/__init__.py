"""Record generators: how each kind of department record is derived from the city.

A services/ definition names a generator and picks fields from it; the generator owns the
maths. Generators only read the city, so every department sees the same person and the same
enterprise. Values are JSON-ready (dates as ISO strings, amounts as numbers).

Generators are grouped by department, one module each (:mod:`~.public_security`,
:mod:`~.civil_affairs`, …); :mod:`~.generator` holds what they share, and this package's
:data:`GENERATORS` names every one of them.
"""

from __future__ import annotations

from exchange.departments.records.civil_affairs import (
    ASSISTANCE_FIELDS,
    CREMATION_FIELDS,
    MARRIAGE_FIELDS,
    cremation,
    marriage_registration,
    social_assistance,
)
from exchange.departments.records.e_licences import (
    CREDIT_FIELDS,
    LICENCE_FIELDS,
    LICENCE_TYPES,
    credit_publicity,
    licence_export,
    licence_lookup,
    licence_numbers_of,
    licences_of,
)
from exchange.departments.records.generator import (
    KEY_TYPES,
    PEOPLE_BLOCK,
    Generator,
    KeyType,
    Record,
    Rows,
    firm_generator,
    key_problem,
    person_generator,
)
from exchange.departments.records.health import BIRTH_FIELDS, birth_certificate
from exchange.departments.records.market import ENTERPRISE_FIELDS, enterprise_registration
from exchange.departments.records.medical import MEDICAL_FIELDS, medical_insurance
from exchange.departments.records.provident_fund import FUND_FIELDS, provident_fund
from exchange.departments.records.public_security import (
    HOUSEHOLD_FIELDS,
    VEHICLE_FIELDS,
    household_registration,
    vehicle_export,
    vehicle_lookup,
    vin_with_check,
)
from exchange.departments.records.real_estate import ESTATE_FIELDS, real_estate
from exchange.departments.records.social_security import (
    INSURANCE_FIELDS,
    PAYMENT_FIELDS,
    QUALIFICATION_FIELDS,
    professional_qualification,
    social_insurance_enrolment,
    social_insurance_payments,
)
from exchange.departments.records.taxation import (
    TAX_FIELDS,
    TAX_PAID_FIELDS,
    tax_paid,
    tax_rating,
    tax_registration,
)

__all__ = [
    "GENERATORS",
    "KEY_TYPES",
    "LICENCE_TYPES",
    "PEOPLE_BLOCK",
    "Generator",
    "KeyType",
    "Record",
    "Rows",
    "key_problem",
    "licence_numbers_of",
    "licences_of",
    "tax_rating",
    "vin_with_check",
]


GENERATORS: dict[str, Generator] = {
    g.name: g
    for g in (
        person_generator("household_registration", HOUSEHOLD_FIELDS, household_registration),
        Generator(
            "vehicle_registration",
            "plate_number",
            "plate_number",
            VEHICLE_FIELDS,
            vehicle_lookup,
            lambda city: city.population,
            vehicle_export,
        ),
        firm_generator("enterprise_registration", ENTERPRISE_FIELDS, enterprise_registration),
        person_generator("marriage_registration", MARRIAGE_FIELDS, marriage_registration),
        person_generator("social_assistance", ASSISTANCE_FIELDS, social_assistance),
        person_generator("cremation", CREMATION_FIELDS, cremation),
        person_generator(
            "social_insurance_enrolment", INSURANCE_FIELDS, social_insurance_enrolment
        ),
        person_generator("social_insurance_payments", PAYMENT_FIELDS, social_insurance_payments),
        person_generator(
            "professional_qualification", QUALIFICATION_FIELDS, professional_qualification
        ),
        person_generator("provident_fund", FUND_FIELDS, provident_fund),
        person_generator("real_estate", ESTATE_FIELDS, real_estate),
        firm_generator("tax_registration", TAX_FIELDS, tax_registration),
        firm_generator("tax_paid", TAX_PAID_FIELDS, tax_paid),
        person_generator("birth_certificate", BIRTH_FIELDS, birth_certificate),
        person_generator("medical_insurance", MEDICAL_FIELDS, medical_insurance),
        Generator(
            "e_licence",
            "licence_number",
            "licence_number",
            LICENCE_FIELDS,
            licence_lookup,
            lambda city: city.enterprises,
            licence_export,
        ),
        firm_generator("credit_publicity", CREDIT_FIELDS, credit_publicity),
    )
}
