"""``python -m exchange.healthcheck``: exit 0 when the part on ``EXCHANGE_PORT`` is healthy.

The container's ``HEALTHCHECK``: the image has Python but no curl, and every part of the
exchange (``exchange up`` and each ``exchange serve …``) answers ``GET /healthz`` with
``{"status": "ok", …}``. Standard library only, so the check costs no imports of the app.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

__all__ = ["check", "main", "wait"]


def check(url: str, timeout: float = 4.0) -> str | None:
    """``None`` when ``url`` answers 200 with status ok, else what went wrong."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.loads(resp.read() or b"{}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{url}: {exc}"
    if not isinstance(body, dict) or body.get("status") != "ok":
        return f"{url}: answered {body!r}"
    return None


def wait(
    url: str,
    *,
    within: float,
    proc: subprocess.Popen[bytes] | None = None,
    every: float = 0.1,
) -> str | None:
    """Ask :func:`check` every ``every`` seconds until ``url`` is healthy: ``None`` then,
    else why it never was: ``exited with N`` when ``proc`` (the server started for it)
    ended first, or ``did not answer within N s``. For a caller's own words around it."""
    deadline = time.monotonic() + within
    while check(url, timeout=1) is not None:
        if proc is not None and proc.poll() is not None:
            return f"exited with {proc.returncode}"
        if time.monotonic() > deadline:
            return f"did not answer within {within:g} s"
        time.sleep(every)
    return None


def main() -> int:
    port = os.environ.get("EXCHANGE_PORT", "8000")
    problem = check(f"http://127.0.0.1:{port}/healthz")
    if problem is not None:
        sys.stderr.write(f"unhealthy: {problem}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
