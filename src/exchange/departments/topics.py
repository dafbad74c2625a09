"""Every served topic and its fault layers, and the descriptions that show them.

A topic's effective profile merges four layers (:func:`~.faults.merge`): the department
definition's, the operator's override for the department, the topic definition's and the
operator's override for the topic. It is recomputed when a layer changes, so a request reads
one object; a changed noise rate also renews the topic's lookup and its export chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from exchange.departments.asgi import Fail
from exchange.departments.city import City
from exchange.departments.definitions import DepartmentDefinition
from exchange.departments.faults import FaultPatch, merge
from exchange.departments.overlay import Overlay
from exchange.departments.records import GENERATORS
from exchange.departments.served import Topic, make_lookup

__all__ = ["Topics"]


class Topics:
    """The topics of every department, by (department, topic slug)."""

    def __init__(
        self,
        definitions: dict[str, DepartmentDefinition],
        city: City,
        overlay: Overlay,
        renewed: Callable[[str, str], None],
    ) -> None:
        self.definitions = definitions
        self.city = city
        self.overlay = overlay
        #: told (department, slug) when a topic's records changed (its noise was set)
        self.renewed = renewed
        self.dept_overrides: dict[str, FaultPatch] = {}
        self.by_key: dict[tuple[str, str], Topic] = {}
        self._summaries: dict[str, bytes] = {}
        for code, dept in definitions.items():
            for t in dept.topics:
                topic = Topic(dept, t, GENERATORS[t.generator], t.fields)
                topic.lookup = make_lookup(topic, city, overlay)
                self.by_key[(code, t.slug)] = topic
            self._refresh(code)

    def _refresh(self, code: str) -> None:
        dept = self.definitions[code]
        for t in dept.topics:
            topic = self.by_key[(code, t.slug)]
            old_noise = topic.profile.noise_rate
            topic.profile = merge(
                dept.faults, self.dept_overrides.get(code), t.faults, topic.override
            )
            if topic.profile.noise_rate != old_noise:
                # Noise changes the records themselves: cached answers are stale.
                topic.lookup = make_lookup(topic, self.city, self.overlay)
                self.renewed(code, t.slug)
        self._summaries.pop(code, None)

    def outage_check(self, code: str) -> None:
        """Fail with 503 when every topic of the department is in an outage."""
        dept = self.definitions[code]
        if all(self.by_key[(code, t.slug)].profile.outage for t in dept.topics):
            raise Fail(503, "department_unavailable", f"{dept.name} is unavailable")

    def summary(self, code: str) -> dict[str, Any]:
        """What ``GET /departments/{code}`` returns."""
        dept = self.definitions[code]
        return {
            "code": dept.code,
            "name": dept.name,
            "short_name": dept.short_name,
            "description": dept.description,
            "topics": [
                {
                    "slug": t.slug,
                    "name": t.name,
                    "key": t.key,
                    "key_type": t.key_type,
                    "fields": list(t.fields),
                    "export": t.export,
                    "api_path": f"/topics/{t.slug}",
                    "faults": self.by_key[(code, t.slug)].profile.model_dump(),
                }
                for t in dept.topics
            ],
        }

    def summary_json(self, code: str) -> bytes:
        """:meth:`summary` serialised, kept until the department's faults change."""
        cached = self._summaries.get(code)
        if cached is None:
            cached = self._summaries[code] = orjson.dumps(self.summary(code))
        return cached

    def faults_view(self, code: str, slug: str | None = None) -> dict[str, Any]:
        """The layers and effective profile(s) of a department or one topic."""
        dept = self.definitions[code]
        if slug is not None:
            topic = self.by_key[(code, slug)]
            return {
                "department": code,
                "topic": slug,
                "definition": None if topic.defn.faults is None else topic.defn.faults.given(),
                "override": None if topic.override is None else topic.override.given(),
                "effective": topic.profile.model_dump(),
            }
        override = self.dept_overrides.get(code)
        return {
            "department": code,
            "definition": dept.faults.model_dump(),
            "override": None if override is None else override.given(),
            "topics": {
                t.slug: self.by_key[(code, t.slug)].profile.model_dump() for t in dept.topics
            },
        }

    def set_faults(self, code: str, slug: str | None, patch: FaultPatch | None) -> None:
        """Lay ``patch`` over the runtime override (``None`` clears it back to the definition)."""
        if slug is None:
            if patch is None:
                self.dept_overrides.pop(code, None)
            else:
                old = self.dept_overrides.get(code)
                self.dept_overrides[code] = patch if old is None else old.combined(patch)
        else:
            topic = self.by_key[(code, slug)]
            if patch is None:
                topic.override = None
            else:
                topic.override = patch if topic.override is None else topic.override.combined(patch)
        self._refresh(code)
