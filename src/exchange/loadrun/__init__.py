"""``exchange load``: replay a day of the Guangzhou exchange with Locust, headless.

Starts an exchange on loopback if none answers at ``--host``, runs ``loadtests/locustfile.py``
in a Locust subprocess (so gevent never patches this process, and ``--processes`` can fan
out), shows the simulated day's progress from the progress file the locustfile writes, and
prints the summary it leaves. Locust is an optional dependency (``pip install -e .[load]``).

The command is :mod:`.command`; the day's sizing :mod:`.sizing`, the exchange it drives
:mod:`.target`, following the run :mod:`.progress`, what it cost :mod:`.resources`, the
closing table :mod:`.summary`.
"""

from exchange.loadrun.command import PROCESSES, WORKERS, find_locustfile, load
from exchange.loadrun.progress import REPORTED, Reporter, read_progress, watch
from exchange.loadrun.resources import Resources
from exchange.loadrun.sizing import BASE_USERS, DAILY_RECORDS_2020, peak_users
from exchange.loadrun.target import healthy

__all__ = [
    "BASE_USERS",
    "DAILY_RECORDS_2020",
    "PROCESSES",
    "REPORTED",
    "WORKERS",
    "Reporter",
    "Resources",
    "find_locustfile",
    "healthy",
    "load",
    "peak_users",
    "read_progress",
    "watch",
]
