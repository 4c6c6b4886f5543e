"""Validation of the ids that become partition keys and path segments.

A drama id comes from a folder name somebody else chose. It is used as a Dagster
partition key and as a path segment in the artifact store, so anything that could
escape a folder or confuse a URL is refused with a message saying why.
"""

from __future__ import annotations

import re

MAX_ID_LENGTH = 64
_SLUG = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")


class UnsafeIdError(ValueError):
    """A name that cannot be used as an id; the message says why in one line."""


def validate_drama_id(name: str) -> str:
    """Return `name` if it is a safe drama id, else raise UnsafeIdError with the reason."""
    if not isinstance(name, str) or not name:
        raise UnsafeIdError("drama id is empty")
    shown = name.encode("unicode_escape").decode("ascii")
    if ".." in name or "/" in name or "\\" in name or "\x00" in name:
        raise UnsafeIdError(f"drama id {shown!r} contains a path separator or '..'")
    if len(name) > MAX_ID_LENGTH:
        raise UnsafeIdError(f"drama id {shown[:20]!r}... is {len(name)} characters long (at most {MAX_ID_LENGTH})")
    if not _SLUG.fullmatch(name):
        raise UnsafeIdError(
            f"drama id {shown!r} is not a lowercase slug (letters a-z, digits, single '-' or '_' between them)"
        )
    return name


def is_safe_segment(name: str) -> bool:
    """True when `name` can be one path segment under the artifact root (episode ids etc.)."""
    return bool(name) and name not in {".", ".."} and not any(c in name for c in "/\\\x00") and len(name) <= 200
