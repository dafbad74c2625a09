"""How every story (``exchange demo --story …``) speaks: numbered chapters, lines, an
application's status in the reader's language, and ID numbers shown as a caseworker's
screen shows them."""

from __future__ import annotations

import time

from rich.console import Console

from exchange.glossary import Lang, word

__all__ = ["Narrator", "mask_id"]


class Narrator:
    def __init__(self, console: Console, pause: float, lang: Lang = "zh") -> None:
        self.console = console
        self.pause = pause
        self.lang: Lang = lang
        self.step = 0

    def status(self, status: str) -> str:
        colour = {
            "approved": "green",
            "partially_approved": "green",
            "pending_review": "yellow",
            "returned": "red",
            "disputed": "magenta",
        }.get(status, "white")
        return f"[{colour}]{word('app_status', status, self.lang)}[/]"

    def chapter(self, title: str, text: str) -> None:
        self.step += 1
        self.console.rule(f"[bold]Step {self.step} · {title}")
        self.console.print(text, highlight=False)
        if self.pause:
            time.sleep(self.pause)

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False)


def mask_id(id_number: str) -> str:
    """The narration shows what a caseworker's screen would: not the whole ID number."""
    return id_number[:6] + "********" + id_number[-4:]
