"""The day shape: Locust's user count follows the 24-hour profile, compressed in wall time.

Users are proportional to the day's rate (see :meth:`loadtests.profile.DayPlan.users_at`)
and each paces itself by records, so the volume follows the profile; the run stops when
the compressed day is over. ``-u/--users`` is the peak user count (default 40).
"""

from __future__ import annotations

from locust import LoadTestShape

from loadtests.day import day_of

__all__ = ["DayShape"]


class DayShape(LoadTestShape):
    """Night trough, morning and afternoon peaks, in ``--day-minutes`` of wall time."""

    # -u/--users is read (as the peak) rather than ignored with a warning.
    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        day = day_of(self.runner.environment)
        plan = day.day
        # The day's clock (started once setup is done), not the shape's own: with a local
        # runner the shape's clock would also count the setup.
        t = day.elapsed()
        if t >= plan.day_seconds:
            return None
        # Before the spawn message this tick causes, which carries the options to workers.
        day.forward_workers(self.runner)
        # Spawn fast: a step of the profile should take effect within a tick, not ramp.
        return plan.users_at(t), max(10.0, float(plan.peak_users))
