"""File handling of reports: slugs, file names and atomic writes."""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime
from pathlib import Path

from stackml.errors import InputError

__all__ = ["SIDECAR_SUFFIX", "atomic_write_text", "check_slug", "report_stem", "slugify"]

# The index finds reports through these sidecars, so it never has to open multi-megabyte HTML files.
SIDECAR_SUFFIX = ".meta.json"
TEMP_SUFFIX = ".tmp"
_SLUG_OK = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
_MAX_SLUG = 60


def slugify(text: str) -> str:
    """Turn a title into a file-name-safe slug (``"Weekly ROAS!"`` -> ``"weekly-roas"``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:_MAX_SLUG].rstrip("-") or "report"


def check_slug(slug: str) -> str:
    """Return ``slug`` when it is safe as part of a file name, else raise :class:`InputError`."""
    if not isinstance(slug, str) or not _SLUG_OK.match(slug):
        raise InputError(
            f"The 'slug' of a report must be 1-80 characters of a-z, 0-9, '-' or '_', "
            f"starting with a letter or digit; got {slug!r}.",
            hint="Leave slug out to derive it from the title, or pass e.g. slug='weekly-roas'.",
        )
    return slug


def report_stem(directory: Path, created_at: datetime, slug: str) -> str:
    """Pick ``<UTC timestamp>-<slug>``, adding ``-2``, ``-3``... when a report of that name exists."""
    base = f"{created_at.strftime('%Y%m%dT%H%M%SZ')}-{slug}"
    stem, n = base, 1
    while (directory / f"{stem}.html").exists() or (directory / f"{stem}{SIDECAR_SUFFIX}").exists():
        n += 1
        stem = f"{base}-{n}"
    return stem


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` so readers see either the old file or the new one, never half.

    The temporary file lives in the same folder (``os.replace`` is atomic only within a file system)
    and is removed if anything fails.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
    # os.open with 0o666 lets the umask decide the mode, like a normal file (mkstemp would force 0600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
