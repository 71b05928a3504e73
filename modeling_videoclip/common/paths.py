"""Names as paths: names taken from data (clip ids, ...) made safe to become file names, and telling a local path
from a Hub id."""

from __future__ import annotations

import os
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_file_stem(name: object, fallback: str) -> str:
    """`name` as a file name inside its folder: every character but letters, digits, ".", "_" and "-" becomes "_"
    (so no path separator), and leading dots are dropped (no ".." and no hidden file); `fallback` if nothing is left.

    Args:
        name: the name from the data, e.g. a clip id from a release JSON.
        fallback: the name to use when `name` has no safe character, e.g. ``"clip3"``.
    """
    stem = _UNSAFE.sub("_", str(name)).lstrip(".")
    return stem or fallback


def looks_like_local_path(name: str) -> bool:
    """Whether `name` is meant as a local path rather than a Hub id (``org/name``): it starts with ".", "~" or the
    path separator, has more than one "/", or exists."""
    return name.startswith((".", "~", os.path.sep)) or name.count("/") > 1 or os.path.exists(name)
