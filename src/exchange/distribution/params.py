"""Path and query parameters the subscription routes share (management and the feed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

SubId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Subscription id")]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]
