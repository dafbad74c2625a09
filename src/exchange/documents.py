"""YAML files read into pydantic models: the one loader of the declarative content (the
catalog's units, topics and vocabulary, the licence types, the mock departments' definitions).

A file that cannot be used is refused with a :class:`ContentError` naming the file, the
dotted path of the offending field (``topics.3.items.2.sharing_type``; empty when the whole
file is at fault) and the reason, worded the same way for every kind of file. A kernel module
(no database, no domain), so the mock departments use it as the platform does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["ContentError", "load_document", "read_yaml", "validate"]

# The schemas' cross-field validators report "items.2.field: reason"; the prefix is a path.
_PATH_PREFIX = re.compile(r"^([A-Za-z_][\w]*(?:\.\w+)*): (.*)$", re.DOTALL)

# libyaml's loader is ~10x faster than the pure-Python one; fall back when it is missing.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_M = TypeVar("_M", bound=BaseModel)


class ContentError(ValueError):
    """A content file is invalid.

    ``file`` is the path of the file (or directory), ``field`` the dotted path of the
    offending entry or field inside it (empty when the whole file is at fault) and
    ``reason`` says what is wrong.
    """

    def __init__(self, file: str | Path, field: str, reason: str) -> None:
        self.file = str(file)
        self.field = field
        self.reason = reason
        where = f"{self.file}: {field}" if field else self.file
        super().__init__(f"{where}: {reason}")


def read_yaml(file: Path) -> Any:
    """The parsed YAML document of ``file``, or a ContentError saying why not."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContentError(file, "", f"cannot read the file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ContentError(file, "", f"the file is not UTF-8: {exc.reason}") from exc
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is always a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContentError(file, "", f"not valid YAML{at}: {problem}") from exc


def load_document(file: Path, model: type[_M]) -> _M:
    """The whole YAML document of ``file`` validated as ``model`` (a ContentError if not)."""
    return validate(model, file, "", read_yaml(file))


def validate(model: type[_M], file: str | Path, path: str, raw: Any) -> _M:
    """``model`` validated from ``raw`` (found at ``path`` in ``file``); the first error
    becomes a ContentError."""
    if path == "" and not isinstance(raw, dict):
        raise ContentError(file, "", "the file must be a mapping")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        parts = [*([path] if path else []), *(str(p) for p in err["loc"])]
        reason = str(err["msg"])
        if err["type"] == "value_error":
            # Model-level rules raise "Value error, items.2.field: reason": move the path
            # from the message into the field so every error reads the same way.
            reason = reason.removeprefix("Value error, ")
            match = _PATH_PREFIX.match(reason)
            if match is not None:
                parts.append(match.group(1))
                reason = match.group(2)
        if err["type"] == "missing":
            reason = "required field is missing"
        elif err["type"] == "extra_forbidden":
            # Most often an unquoted comma inside a {…} flow mapping split a value in two.
            reason = "unknown field (in a YAML {…} mapping, quote a value containing a comma)"
        elif "input" in err and err["type"] not in ("value_error", "model_type"):
            reason = f"{reason} (got {err['input']!r})"
        raise ContentError(file, ".".join(parts), reason) from exc
