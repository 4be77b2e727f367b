"""The ``index.html`` of a reports folder: every report, newest first."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from urllib.parse import quote

from stackml.reports._files import SIDECAR_SUFFIX, atomic_write_text
from stackml.reports._format import human_time
from stackml.reports._templates import asset, template

__all__ = ["INDEX_NAME", "ReportEntry", "build_index", "list_reports"]

INDEX_NAME = "index.html"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportEntry:
    """One report as the index sees it (read from its ``.meta.json`` sidecar)."""

    title: str
    created_at: datetime
    path: Path
    pipeline: str | None = None
    run_id: str | None = None


def _read_entry(sidecar: Path) -> ReportEntry | None:
    """Parse one sidecar; a broken or orphaned one is skipped with a warning, not fatal to the index."""
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        name = meta["file"]
        # The sidecar names a file in the same folder; anything else (a path, a missing page) is ignored.
        if not isinstance(name, str) or Path(name).name != name or not (sidecar.parent / name).is_file():
            raise ValueError(f"its page {name!r} is missing")
        created = datetime.fromisoformat(meta["created_at"])
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        optional = {k: meta.get(k) for k in ("pipeline", "run_id")}
        return ReportEntry(
            title=str(meta["title"]),
            created_at=created.astimezone(UTC),
            path=sidecar.parent / name,
            **{k: (None if v is None else str(v)) for k, v in optional.items()},
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("Skipping report metadata %s: %s", sidecar, exc)
        return None


def list_reports(reports_dir: Path | str | None = None) -> list[ReportEntry]:
    """Every report in ``reports_dir`` (default ``get_settings().reports_dir``), newest first."""
    directory = _resolve(reports_dir)
    if not directory.is_dir():
        return []
    entries = [e for p in directory.glob(f"*{SIDECAR_SUFFIX}") if (e := _read_entry(p)) is not None]
    # File name breaks ties so the order is stable when two reports share a second.
    return sorted(entries, key=lambda e: (e.created_at, e.path.name), reverse=True)


def _row(entry: ReportEntry) -> str:
    pipeline = f'<span class="badge">{escape(entry.pipeline)}</span>' if entry.pipeline else ""
    run_id = f"<code>{escape(entry.run_id)}</code>" if entry.run_id else ""
    when = f'<time datetime="{entry.created_at.isoformat()}">{human_time(entry.created_at)}</time>'
    return (
        f'<tr><td class="when">{when}</td>'
        f'<td><a href="{escape(quote(entry.path.name))}">{escape(entry.title)}</a></td>'
        f"<td>{pipeline}</td><td>{run_id}</td></tr>"
    )


def build_index(reports_dir: Path | str | None = None) -> Path:
    """Write ``index.html`` listing every report in the folder, newest first, atomically.

    Args:
        reports_dir: the folder (created if missing); default ``get_settings().reports_dir``.

    Returns:
        The path of ``index.html``.
    """
    from stackml import __version__

    directory = _resolve(reports_dir)
    directory.mkdir(parents=True, exist_ok=True)
    entries = list_reports(directory)
    if entries:
        body = (
            '<figure class="block"><div class="table-wrap"><table class="data index">'
            "<thead><tr><th>Created</th><th>Report</th><th>Pipeline</th><th>Run</th></tr></thead>"
            "<tbody>\n" + "\n".join(_row(e) for e in entries) + "\n</tbody></table></div></figure>"
        )
        summary = f"{len(entries)} report{'s' if len(entries) != 1 else ''}, newest first."
    else:
        body = '<p class="empty">No reports yet. Each pipeline run adds one here.</p>'
        summary = "No reports yet."
    page = template("index.html").substitute(
        version=escape(__version__),
        css=asset("style.css"),
        summary=summary,
        body=body,
        updated_human=human_time(datetime.now(UTC)),
    )
    return atomic_write_text(directory / INDEX_NAME, page)


def _resolve(reports_dir: Path | str | None) -> Path:
    if reports_dir is None:
        from stackml.config import get_settings

        return get_settings().reports_dir
    return Path(reports_dir).expanduser()
