"""The member units at work: lookups, batch lookups, bulk exports, searches, applications.

A :class:`DepartmentUser` is one terminal seat of the exchange. Each action is taken on
behalf of a unit drawn by its activity weight (so the 151 units' shares hold whatever the
user count, locally or spread over workers), on one of the topics that unit's grants
allow, drawn by the topics' Zipf popularity. The action comes from the mix
(:class:`loadtests.profile.Mix`).

Pacing is by *records*, not requests, and shared by the process's users
(:class:`loadtests.profile.Pacer`): an action reserves the records it expects to move,
settles with what it moved, and users wait while the process is ahead of the day. A
backlog after a slow patch is worked off later, up to ``--max-lag`` seconds of the rate.
"""

from __future__ import annotations

import contextlib
import random
import time
from typing import Any

from locust import FastHttpUser, task

from loadtests.day import Day, day_of, pick
from loadtests.province import GROUP, ProvinceDay
from loadtests.setup import Topic

__all__ = ["DepartmentUser"]

#: Shortest pause between two actions of one user (guards against a tight loop of calls
#: that return no records, e.g. lookups on a sparse topic).
MIN_WAIT = 0.02
SEARCH_WORDS = (
    "户籍",
    "人口",
    "企业",
    "法人",
    "社保",
    "社会保险",
    "婚姻",
    "不动产",
    "公积金",
    "医保",
    "证照",
    "信用",
    "税务",
    "机动车",
    "出生",
    "低保",
    "殡葬",
    "资格",
)


def _error_label(resp: Any) -> str:
    """``"<status> <error code>"`` for the summary's errors-by-code table."""
    code = "?"
    # A non-JSON error page: the status alone says enough.
    with contextlib.suppress(Exception):
        code = resp.json()["error"]["code"]
    return f"{resp.status_code} {code}"


class DepartmentUser(FastHttpUser):
    """One seat acting for the platform's units in turn."""

    # A bulk export of 10,000 records takes seconds on a busy box; the default 60 s
    # network timeout stays, but connections are reused.
    concurrency = 1

    def on_start(self) -> None:
        self.day: Day = day_of(self.environment)
        self.rng = random.Random()

    def wait_time(self) -> float:
        """Wait while the process is ahead of the day (see the module docstring)."""
        pacer = self.day.pacer
        assert pacer is not None, "the day has not started"
        share = self.day.share(self.environment.runner)
        return max(MIN_WAIT, pacer.wait(self.day.elapsed(), share))

    @task
    def act(self) -> None:
        """One action of one unit."""
        plan = self.day.plan
        assert plan is not None, "the day was not prepared"
        province = self.day.province
        if province is not None and province.due():
            self._provincial(province)
            return
        dept = pick(self.rng, plan.departments)
        held = plan.grants[dept]
        topic = plan.topics[self.rng.choices(held, [plan.popularity[c] for c in held])[0]]
        lookups = topic.key_type in ("id_number", "credit_code")
        action = self.day.mix.choose(self.rng, exportable=topic.exportable, lookups=lookups)
        if action == "single":
            self._query(dept, topic, 1, action)
        elif action == "batch":
            n = self.rng.randint(self.day.mix.batch_min, self.day.mix.batch_max)
            self._query(dept, topic, n, action)
        elif action == "export":
            self._export(dept, topic)
        elif action == "search":
            self._search(dept)
        else:
            self._apply(dept)

    # -- exchange ---------------------------------------------------------------------------

    def _context(self, dept: str, topic: Topic, action: str) -> dict[str, Any]:
        return {"department": dept, "group": topic.group, "topic": topic.code, "action": action}

    def _query(
        self, dept: str, topic: Topic, n: int, action: str, province: ProvinceDay | None = None
    ) -> None:
        """A lookup of ``n`` keys; with ``province``, by a provincial department through
        the provincial platform (a city topic mounted there)."""
        pool = self.day.id_numbers if topic.key_type == "id_number" else self.day.credit_codes
        keys = self.rng.sample(pool, min(n, len(pool)))
        assert self.day.pacer is not None
        if province is None:
            url, key, name = topic.path + "/query", self.day.key_of(dept), action
            context = self._context(dept, topic, action)
        else:
            url, key = province.host + topic.path + "/query", self.day.province_key_of(dept)
            name = f"{GROUP} {action}"
            context = {"department": dept, "group": GROUP, "topic": topic.code, "action": GROUP}
        with (
            self.day.pacer.reserve(len(keys)) as booking,
            self.client.post(
                url,
                json={"keys": keys},
                headers={"Authorization": f"Bearer {key}"},
                name=f"{name} · {topic.group}",
                context=context,
                catch_response=True,
            ) as resp,
        ):
            if resp.status_code != 200:
                resp.failure(_error_label(resp))
            else:
                booking.records = len(resp.json()["records"])
                # Locust fires the request event with this same dict when the block exits.
                resp.request_meta["context"]["records"] = booking.records

    def _provincial(self, province: ProvinceDay) -> None:
        """A provincial department's lookup (single or batch, in the mix's proportions)."""
        plan = province.plan
        dept = pick(self.rng, plan.departments)
        held = plan.grants[dept]
        topic = plan.topics[self.rng.choices(held, [plan.popularity[c] for c in held])[0]]
        mix = self.day.mix
        if self.rng.random() * (mix.single + mix.batch) < mix.single:
            self._query(dept, topic, 1, "single", province)
        else:
            self._query(
                dept, topic, self.rng.randint(mix.batch_min, mix.batch_max), "batch", province
            )

    def _export(self, dept: str, topic: Topic) -> None:
        page = self.day.mix.export_page
        rows = min(self.day.options.export_window, self.day.export_totals.get(topic.code, page))
        offset = self.rng.randrange(max(1, -(-rows // page))) * page
        expected = min(page, max(rows - offset, 0)) or page
        assert self.day.pacer is not None
        with (
            self.day.pacer.reserve(expected) as booking,
            self.client.get(
                topic.path + "/export",
                params={"offset": offset, "limit": page},
                headers={"Authorization": f"Bearer {self.day.key_of(dept)}"},
                name=f"export · {topic.group}",
                context=self._context(dept, topic, "export"),
                catch_response=True,
            ) as resp,
        ):
            if resp.status_code != 200:
                resp.failure(_error_label(resp))
            else:
                total = resp.headers.get("X-Total-Rows")
                if total and total.isdigit():
                    self.day.export_totals[topic.code] = int(total)
                booking.records = resp.content.count(b"\n")
                resp.request_meta["context"]["records"] = booking.records

    # -- catalog work -----------------------------------------------------------------------

    def _search(self, dept: str) -> None:
        params: dict[str, Any] = {"q": self.rng.choice(SEARCH_WORDS), "limit": 20}
        if self.rng.random() < 0.3:
            params["group"] = self.rng.choice(("basic", "departmental", "special"))
        with self.client.get(
            "/api/v1/catalog/topics",
            params=params,
            headers={"Authorization": f"Bearer {self.day.key_of(dept)}"},
            name="catalog search",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(_error_label(resp))

    def _apply(self, dept: str) -> None:
        """A new application for a topic the unit does not hold: it waits for review (or,
        unconditional, is granted at once); the run's own grants, its subscriptions' too,
        are never touched (:meth:`Day.application_candidates`)."""
        candidates = self.day.application_candidates(dept)
        if not candidates:
            return
        topic = self.rng.choice(candidates)
        until = time.strftime("%Y-%m-%d", time.localtime(time.time() + 180 * 86400))
        with self.client.post(
            "/api/v1/applications",
            json={
                "topic": topic.code,
                "items": list(topic.shareable[:4]),
                "purpose": {"scope": topic.purpose_scope, "text": "负载测试:新业务调研"},
                "legal_function": "依职能共享(负载测试模拟)",
                "valid_until": until,
                "daily_quota": 10_000,
            },
            headers={"Authorization": f"Bearer {self.day.key_of(dept)}"},
            name="application",
            catch_response=True,
        ) as resp:
            if resp.status_code != 201:
                resp.failure(_error_label(resp))
