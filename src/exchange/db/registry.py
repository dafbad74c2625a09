"""Import every domain's models so Base.metadata knows all tables."""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "exchange.clock",
    "exchange.members.models",
    "exchange.catalog.models",
    "exchange.authz.models",
    "exchange.audit.models",
    "exchange.distribution.models",
    "exchange.credit.models",
    "exchange.loadruns.models",
    "exchange.licences.models",
    "exchange.libraries.models",
    "exchange.federation.models",
)


def import_all_models() -> None:
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # Domains land one by one; a missing domain module is not an error, a broken one is.
            if exc.name != name:
                raise
