"""Replacing a folder as a whole: what writers of multi-file outputs (table exports, Spark tables) share."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

__all__ = ["replace_folder"]


def replace_folder(new: Path, target: Path) -> None:
    """Rename the complete folder ``new`` to ``target``.

    A folder cannot be renamed over a non-empty one, so an existing ``target`` is moved aside first, then
    deleted once ``new`` is in place, or moved back if that rename fails: ``target`` is never left missing.
    """
    if not target.exists():
        os.rename(new, target)
        return
    old = target.with_name(f".{target.name}.{secrets.token_hex(6)}.old")
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
