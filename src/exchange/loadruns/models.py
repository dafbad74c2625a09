"""One row per load run the CLI reported (``exchange load``): its latest progress."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db.base import Base, utcnow


class LoadRun(Base):
    """A simulated day driven by Locust; its progress is overwritten at each report."""

    __tablename__ = "ops_load_run"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON)
