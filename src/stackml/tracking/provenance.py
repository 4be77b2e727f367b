"""Where a run came from: the fingerprint of its data and the commit of its code."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from stackml.errors import InputError

__all__ = ["data_fingerprint", "git_commit"]

FINGERPRINT_CHARS = 16
_CHUNK = 1 << 20
_GIT_TIMEOUT_S = 5


def data_fingerprint(obj: Any) -> str:
    """A short, stable SHA-256 fingerprint of a data set.

    Two inputs get the same fingerprint exactly when they hold the same data:

    * a pandas DataFrame or Series: its values, index, column names and dtypes (row order matters);
    * a file (``str`` or ``Path``): its bytes, read in chunks so large files do not fill memory;
    * a folder: the relative paths and bytes of every file in it (e.g. a partitioned Parquet set);
    * a list, tuple or dict of the above, in order (dicts by sorted key).

    Args:
        obj: the data to fingerprint.

    Returns:
        The first 16 hex characters of the SHA-256 digest.

    Raises:
        InputError: for a path that does not exist or an unsupported type.

    Example:
        >>> import pandas as pd
        >>> data_fingerprint(pd.DataFrame({"y": [1, 2]})) == data_fingerprint(pd.DataFrame({"y": [1, 2]}))
        True
    """
    return _digest(obj).hex()[:FINGERPRINT_CHARS]


def _digest(obj: Any) -> bytes:
    import pandas as pd

    # Each kind gets its own prefix so that, say, a list holding one frame differs from the frame.
    if isinstance(obj, pd.Series):
        return _digest(obj.to_frame())
    if isinstance(obj, pd.DataFrame):
        return _frame_digest(obj)
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if path.is_file():
            return _file_digest(path, b"file:")
        if path.is_dir():
            return _folder_digest(path)
        raise InputError(
            f"data_fingerprint got the path '{path}', which does not exist.",
            hint="Pass an existing file or folder, or the DataFrame itself.",
        )
    if isinstance(obj, (list, tuple)):
        h = hashlib.sha256(b"list:")
        for item in obj:
            h.update(_digest(item))
        return h.digest()
    if isinstance(obj, dict):
        h = hashlib.sha256(b"dict:")
        for key in sorted(obj, key=str):
            h.update(hashlib.sha256(str(key).encode()).digest())
            h.update(_digest(obj[key]))
        return h.digest()
    raise InputError(
        f"data_fingerprint cannot fingerprint an object of type {type(obj).__name__}.",
        hint="Pass a pandas DataFrame or Series, a file or folder path, or a list/dict of those.",
    )


def _frame_digest(frame: Any) -> bytes:
    import pandas as pd

    h = hashlib.sha256(b"frame:")
    layout = {"columns": [str(c) for c in frame.columns], "dtypes": [str(t) for t in frame.dtypes]}
    h.update(json.dumps(layout).encode())
    try:
        row_hashes = pd.util.hash_pandas_object(frame, index=True)
    except TypeError:
        # Cells holding lists or dicts are unhashable for pandas; their text form is stable enough.
        row_hashes = pd.util.hash_pandas_object(frame.astype(str), index=True)
    h.update(row_hashes.to_numpy().tobytes())
    return h.digest()


def _file_digest(path: Path, prefix: bytes) -> bytes:
    h = hashlib.sha256(prefix)
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.digest()


def _folder_digest(folder: Path) -> bytes:
    h = hashlib.sha256(b"folder:")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        h.update(_file_digest(path, b"file:"))
    return h.digest()


def git_commit(path: str | os.PathLike[str] | None = None) -> str:
    """The commit checked out in the git repository holding ``path`` (default the working directory).

    Args:
        path: any folder inside the repository.

    Returns:
        The full commit hash, with ``-dirty`` appended when tracked files have uncommitted changes,
        or ``"unknown"`` outside a repository, before the first commit or without git.

    Example:
        >>> git_commit("/")
        'unknown'
    """
    cwd = Path(path) if path is not None else Path.cwd()
    head = _git(cwd, "rev-parse", "--verify", "HEAD")
    if head is None:
        return "unknown"
    # Untracked files are left out: build outputs and virtualenvs would mark every checkout dirty.
    changes = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    return f"{head}-dirty" if changes else head


def _git(cwd: Path, *args: str) -> str | None:
    """Output of a git command, or None when git is missing, fails or hangs."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
