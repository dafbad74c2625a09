"""A day of the Guangzhou exchange on Locust: ``locust -f loadtests/locustfile.py``.

Re-exports the user and the day shape and installs the hooks (options, grants setup,
records accounting, summary and thresholds). See loadtests/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Locust imports this file by path: make ``loadtests`` importable as a package from the
# repository root (and ``exchange`` from src/ when the package is not installed).
_ROOT = Path(__file__).resolve().parent.parent
for _p in (_ROOT, _ROOT / "src"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from locust import events  # noqa: E402

from loadtests.day import install  # noqa: E402
from loadtests.scenarios.department import DepartmentUser  # noqa: E402
from loadtests.shape import DayShape  # noqa: E402

install(events)

__all__ = ["DayShape", "DepartmentUser"]
