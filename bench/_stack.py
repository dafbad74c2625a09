"""The exchange under test for the broker and soak benchmarks: the mock departments and the
exchange, each in its own process on loopback, and the lookup workloads that drive them.

Workloads:

* ``single``: one consumer (mzj) looks up one topic (household registration) with one key
  per request, cycling over 2,000 existing ID numbers: the broker's best case, where
  concurrent lookups share one provider call;
* ``spread``: three consumers look up the exchangeable topics of every served department
  (≥ 10 topics, ≥ 5 providers), each request a topic, a consumer and a key drawn at
  random (keys from a pool of existing ID numbers or credit codes per topic).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from _common import free_port, wait_up

from exchange.broker.routes import key_item
from exchange.children import end_with_parent
from exchange.departments import bulk, bulk_enterprises
from exchange.departments.city import City
from exchange.security import demo_key

ROOT = Path(__file__).resolve().parents[1]
KEY = "exk_operator_bench"
#: the exchange's master secret, given to both processes: the broker signs its calls to the
#: departments with credentials derived from it, the departments check them
SECRET = "exms_bench"
#: the direct path's explicit credential (wrk and nginx cannot sign): without it the
#: departments refuse every call the exchange did not sign
DIRECT_KEY = "bench-direct-access"
DIRECT = {"Authorization": f"Bearer {DIRECT_KEY}"}
POPULATION = 100_000
ENTERPRISES = 2_000
#: the departments' export chunk cache, MiB (the setting's default)
EXPORT_CACHE_MIB = 256
SERVED = ("gaj", "ghzyj", "gjj", "mzj", "rsj", "scjgj", "swj", "wjw", "ybj", "zsj")
SINGLE_SLUG = "household-registration"
SINGLE_ITEMS = ("id_number", "name", "sex", "birth_date")  # of the topic's 13 items
SPREAD_CONSUMERS = ("sfj", "jyj", "czj")
KEYS_PER_TOPIC = 2_000

EXCHANGE = """
import os, signal, sys
if os.environ.get("BENCH_TRACEMALLOC"):
    # For bench/soak.py --tracemalloc: the first SIGUSR1 starts tracing (25 frames per
    # allocation; not from the start, which slows seeding tenfold), each later one dumps a
    # snapshot.
    import tracemalloc
    _n = [0]
    def _signal(*_):
        if not tracemalloc.is_tracing():
            tracemalloc.start(25)
            return
        _n[0] += 1
        tracemalloc.take_snapshot().dump(f"{os.environ['BENCH_TRACEMALLOC']}.{_n[0]}")
    signal.signal(signal.SIGUSR1, _signal)
if os.environ.get("BENCH_CPROFILE"):
    # For bench/broker.py --cprofile: the first SIGUSR2 starts a cProfile of the event
    # loop's thread timed by that thread's CPU clock (other threads and waits for the GIL
    # do not count), the second stops it and writes its stats.
    import cProfile, time
    _prof = [None]
    def _cprofile(*_):
        if _prof[0] is None:
            _prof[0] = cProfile.Profile(time.thread_time)
            _prof[0].enable()
            return
        _prof[0].disable()
        _prof[0].dump_stats(os.environ["BENCH_CPROFILE"])
        _prof[0] = None
    signal.signal(signal.SIGUSR2, _cprofile)
from exchange.app import build_context, create_app, tune_gc
from exchange.serving import run
from exchange.config import Settings
from exchange.seed import seed
s = Settings(database_url=sys.argv[1], operator_key=sys.argv[2], mock_departments=False,
             population=int(sys.argv[4]), enterprises=int(sys.argv[6]), log_level="warning",
             provider_secret=sys.argv[8], host="127.0.0.1", port=int(sys.argv[3]))
ctx = build_context(s)
seed(ctx.db, s, sys.argv[2], ctx.clock, served=sys.argv[7].split(","),
     departments_url=sys.argv[5] + "/departments")
if int(sys.argv[9]) > 1:
    # As `exchange up --workers N` serves: uvicorn's supervisor and N spawned workers on
    # one socket, each building the exchange from the EXCHANGE_* environment (the seeding
    # above done once, here).
    from exchange.workers import serve_workers
    ctx.db.dispose()
    serve_workers(s, int(sys.argv[9]))
    sys.exit(0)
app = create_app(s, ctx=ctx)
tune_gc(s)
run(app, host="127.0.0.1", port=int(sys.argv[3]))
"""

DEPARTMENTS = """
import sys
from exchange.config import Settings
from exchange.departments.cli import serve_departments
serve_departments(Settings(operator_key=sys.argv[1], population=int(sys.argv[3]),
                  enterprises=int(sys.argv[4]), log_level="warning",
                  provider_secret=sys.argv[5], departments_direct_key=sys.argv[6],
                  departments_export_cache_mib=int(sys.argv[7]) if len(sys.argv) > 7 else 256),
                  "127.0.0.1", int(sys.argv[2]))
"""


@dataclass
class Stack:
    """The two server processes and their base URLs."""

    dept_url: str
    ex_url: str
    department: subprocess.Popen[bytes]
    exchange: subprocess.Popen[bytes]

    @property
    def servers(self) -> dict[str, int]:
        return {"department": self.department.pid, "exchange": self.exchange.pid}


def _env() -> dict[str, str]:
    # The checkout's own src/ first: a baseline checkout measures its own code.
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def departments() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The mock departments (URL, process), every served department's latency and error
    faults switched off: the figures are the exchange's, not a sleep's."""
    dport = free_port()
    dept_url = f"http://127.0.0.1:{dport}"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-c", DEPARTMENTS, KEY, str(dport)),
            *(str(POPULATION), str(ENTERPRISES), SECRET, DIRECT_KEY, str(EXPORT_CACHE_MIB)),
        ],
        env=_env(),
        preexec_fn=end_with_parent(),
    )
    try:
        wait_up(f"{dept_url}/departments/gaj", proc, timeout=300)
        for code in SERVED:
            httpx.put(
                f"{dept_url}/departments/_faults/{code}",
                json={"latency_ms": 0, "jitter_ms": 0, "error_rate": 0.0},
                headers={"Authorization": f"Bearer {KEY}"},
            ).raise_for_status()
        yield dept_url, proc
    finally:
        _stop(proc)


@contextmanager
def exchanges(
    dept_url: str,
    homes: dict[str, tuple[Path, str | None]],
    tracemalloc: Path | None = None,
    cprofile: Path | None = None,
    sources: dict[str, Path] | None = None,
    workers: Mapping[str, int] | None = None,
) -> Iterator[dict[str, tuple[str, subprocess.Popen[bytes]]]]:
    """Seeded exchanges in front of ``dept_url``, started together (each seeds for several
    seconds): name → (URL, process). Each keeps its state (SQLite file unless a database
    URL is given, audit key, checkpoint mirror, ``exchange.log``) in its home directory,
    so several exchanges in one run keep their audit trails apart. ``sources`` runs some
    of them from another tree's ``src/`` (a baseline measured beside this tree);
    ``workers`` serves some from that many processes (``exchange up --workers N``: the
    process is uvicorn's supervisor; ``exchange.proctree.descendants`` names it and its
    workers, whose CPU adds up to the exchange's)."""
    xenv = {
        **_env(),
        # What a worker process reads from its environment (the supervisor passes on the
        # database, keys, host and port itself).
        "EXCHANGE_POPULATION": str(POPULATION),
        "EXCHANGE_ENTERPRISES": str(ENTERPRISES),
        "EXCHANGE_LOG_LEVEL": "warning",
    }
    if tracemalloc is not None:
        xenv["BENCH_TRACEMALLOC"] = str(tracemalloc)
    if cprofile is not None:
        xenv["BENCH_CPROFILE"] = str(cprofile)
    started: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
    try:
        for name, (home, database_url) in homes.items():
            home.mkdir(parents=True, exist_ok=True)
            xport = free_port()
            with (home / "exchange.log").open("ab") as log:
                proc = subprocess.Popen(
                    [
                        *(sys.executable, "-c", EXCHANGE),
                        database_url or f"sqlite:///{home}/exchange.db",
                        *(KEY, str(xport), str(POPULATION), dept_url, str(ENTERPRISES)),
                        ",".join(SERVED),
                        SECRET,
                        str((workers or {}).get(name, 1)),
                    ],
                    env=xenv
                    if name not in (sources or {})
                    else {**xenv, "PYTHONPATH": f"{(sources or {})[name]}{os.pathsep}{ROOT}"},
                    cwd=home,  # a PostgreSQL exchange keeps its state in ./.exchange
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=end_with_parent(),
                )
            started[name] = (f"http://127.0.0.1:{xport}", proc)
        for name, (url, proc) in started.items():
            wait_up(f"{url}/healthz", proc, timeout=600)
            count = (workers or {}).get(name, 1)
            deadline = time.monotonic() + 60
            while count > 1 and len(spawned_workers(proc.pid)) < count:
                if time.monotonic() > deadline:
                    raise SystemExit(f"exchange {name}: {count} workers did not start")
                time.sleep(0.2)
        yield started
    finally:
        for _, proc in started.values():
            _stop(proc)


def spawned_workers(pid: int) -> list[int]:
    """The worker processes uvicorn's supervisor ``pid`` has spawned (``exchange up
    --workers N``), multiprocessing's own helpers left out."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if b"spawn_main" in cmdline:
            found.append(int(child))
    return found


@contextmanager
def stack(
    work: Path,
    database_url: str | None = None,
    tracemalloc: Path | None = None,
    cprofile: Path | None = None,
) -> Iterator[Stack]:
    """Start the departments and a seeded exchange (SQLite in ``work`` unless a database
    URL is given); stop both afterwards. The exchange's log goes to ``work/exchange.log``."""
    with (
        departments() as (dept_url, dept),
        exchanges(dept_url, {"exchange": (work, database_url)}, tracemalloc, cprofile) as started,
    ):
        ex_url, ex = started["exchange"]
        yield Stack(dept_url, ex_url, dept, ex)


@dataclass(frozen=True)
class Target:
    """One topic of a workload: where to look it up, through the broker and directly."""

    code: str
    provider: str
    broker_path: str
    direct_path: str
    keys: tuple[str, ...]
    #: the topic's one key item, as the broker's routes read it (None: not one)
    key_item: str | None = None


@dataclass(frozen=True)
class Workload:
    name: str
    targets: tuple[Target, ...]
    #: consumer code → its key
    consumers: dict[str, str]

    @property
    def providers(self) -> set[str]:
        return {t.provider for t in self.targets}


def _valid_until(http: httpx.Client, auth: dict[str, str]) -> str:
    today = http.get("/api/v1/clock", headers=auth).json()["today"]
    return (dt.date.fromisoformat(today) + dt.timedelta(days=365)).isoformat()


def single_workload(st: Stack) -> Workload:
    """mzj looking up household registration (4 of its items), one key per request."""
    mzj = demo_key(KEY, "mzj")
    auth = {"Authorization": f"Bearer {mzj}"}
    with httpx.Client(base_url=st.ex_url, timeout=30) as http:
        topics = http.get(
            "/api/v1/catalog/topics", params={"provider": "gaj", "limit": 50}, headers=auth
        ).json()["items"]
        topic = next(t for t in topics if t.get("slug") == SINGLE_SLUG)
        code = topic["resource_code"]
        made = http.post(
            "/api/v1/applications",
            json={
                "topic": code,
                "items": list(SINGLE_ITEMS),
                "purpose": {"scope": "data_verification", "text": "benchmark"},
                "legal_function": "benchmark",
                "valid_until": _valid_until(http, auth),
            },
            headers=auth,
        )
        assert made.status_code == 201, made.text
        _await_grants(http, {"mzj": [code]})
    city = City(2020, POPULATION, ENTERPRISES)
    keys = tuple(city.id_number_of(i) for i in range(0, 20_000, 10))
    target = Target(
        code,
        "gaj",
        f"/api/v1/exchange/{code}/query",
        f"/departments/gaj/topics/{SINGLE_SLUG}/query",
        keys,
        key_item(topic.get("items")),
    )
    return Workload("single", (target,), {"mzj": mzj})


def spread_workload(st: Stack, keys_per_topic: int = KEYS_PER_TOPIC) -> Workload:
    """Three consumers granted every exchangeable lookup topic (keyed by ID number or
    credit code) of the served departments, through the load test's own setup."""
    if str(ROOT) not in sys.path:  # the load test's package, from the repository root
        sys.path.insert(0, str(ROOT))
    from loadtests.setup import Plan, discover, ensure_grants

    op = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=st.ex_url, headers=op, timeout=60) as http:
        units, topics = discover(http)
        chosen = sorted(
            (
                t
                for t in topics.values()
                if t.exchangeable and t.key_type in ("id_number", "credit_code")
            ),
            key=lambda t: (t.provider, t.code),
        )
        grants = {c: tuple(t.code for t in chosen) for c in SPREAD_CONSUMERS}
        plan = Plan(departments={}, grants=grants, topics=topics, popularity={})
        ensure_grants(http, plan, lambda code: demo_key(KEY, code))
        _await_grants(http, grants)
        raw = {
            t["resource_code"]: t
            for page in range(0, 5000, 200)
            for t in http.get(
                "/api/v1/catalog/topics", params={"offset": page, "limit": 200}
            ).json()["items"]
            if t.get("provider") in SERVED
        }
    del units
    city = City(2020, POPULATION, ENTERPRISES)
    people = tuple(bulk.sample_id_numbers(city, keys_per_topic, 7))
    firms = tuple(bulk_enterprises.sample_credit_codes(city, keys_per_topic, 7))
    targets = []
    for t in chosen:
        data = raw[t.code]
        api_path = data.get("api_path") or f"/topics/{data.get('slug')}"
        targets.append(
            Target(
                t.code,
                t.provider,
                f"{t.path}/query",
                f"/departments/{t.provider}{api_path}/query",
                people if t.key_type == "id_number" else firms,
                key_item(data.get("items")),
            )
        )
    return Workload("spread", tuple(targets), {c: demo_key(KEY, c) for c in SPREAD_CONSUMERS})


def _await_grants(http: httpx.Client, grants: Mapping[str, Sequence[str]]) -> None:
    """Until the broker's grant cache sees every grant (polled, to a deadline)."""
    deadline = time.monotonic() + 30
    for consumer, codes in grants.items():
        for code in codes:
            while True:
                resp = http.post(
                    "/api/v1/authz/check",
                    json={"consumer": consumer, "topic": code},
                    headers={"Authorization": f"Bearer {KEY}"},
                )
                if resp.status_code == 200 and resp.json().get("allowed"):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"grant {consumer} → {code} not visible: {resp.text}")
                time.sleep(0.05)


#: wrk's ``delay()`` hook, holding the requests of all connections to a fixed schedule:
#: every request takes the next slot of ``1000 / rate`` ms (LuaJIT's FFI reads the monotonic
#: clock; wrk's timers have millisecond resolution, the slots do not drift). A schedule
#: behind by more than a second is restarted from now: missed slots are dropped, not sent
#: in a burst, so a stalled exchange is not then flooded. With 1 wrk thread all
#: connections share one Lua state, hence one schedule.
PACED = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local interval = 1000 / %(rate)s
local slot = nil
delay = function()
  local now = now_ms()
  if slot == nil or slot < now - 1000 then slot = now end
  slot = slot + interval
  local wait = slot - now
  if wait < 0 then return 0 end
  return math.floor(wait)
end
"""


def lua(workload: Workload, direct: bool, rate: float | None = None) -> str:
    """A wrk script: each request a random target, consumer and key (``direct``: to the
    department with the direct-access key). Seeded, so runs draw the same sequence.
    ``rate``: requests per second for the whole wrk run (1 thread; see :data:`PACED`),
    else as fast as the connections go."""
    targets = workload.targets
    paths = ",".join(json.dumps(t.direct_path if direct else t.broker_path) for t in targets)
    # Targets share their key pools (ID numbers, credit codes): each pool is written once.
    unique: dict[tuple[str, ...], int] = {}
    for t in targets:
        unique.setdefault(t.keys, len(unique) + 1)
    pools = ",".join("{" + ",".join(json.dumps(k) for k in keys) + "}" for keys in unique)
    pool_of = ",".join(str(unique[t.keys]) for t in targets)
    keys = [DIRECT_KEY] if direct else list(workload.consumers.values())
    auths = ",".join(json.dumps(f"Bearer {k}") for k in keys)
    head = 'wrk.headers["Authorization"] = auths[math.random(#auths)]\n  '
    return (
        f"local paths = {{{paths}}}\nlocal pools = {{{pools}}}\n"
        f"local pool_of = {{{pool_of}}}\nlocal auths = {{{auths}}}\n"
        "math.randomseed(2020)\n"
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n"
        "  local t = math.random(#paths)\n  local keys = pools[pool_of[t]]\n  "
        f"{head}"
        "return wrk.format(nil, paths[t], nil, "
        "'{\"keys\":[\"' .. keys[math.random(#keys)] .. '\"]}')\n"
        "end\n" + (PACED % {"rate": repr(float(rate))} if rate else "")
    )
