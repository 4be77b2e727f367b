"""Scoring beyond one HTTP request: whole warehouse tables in chunks (:func:`score_table`) and event
streams through stateless workers on a broker (:func:`score_stream`).

Example:
    >>> from stackml.scoring import score_table  # doctest: +SKIP
"""

from stackml.scoring.table import ScoredTable, score_table

__all__ = ["ScoredTable", "score_table", "StreamOptions", "StreamStats", "StreamWorker", "score_stream"]


def __getattr__(name: str):  # noqa: ANN202 - the stream half needs the serve extra: import it when asked
    if name in ("StreamOptions", "StreamStats", "StreamWorker", "score_stream"):
        from stackml.scoring import stream

        return getattr(stream, name)
    raise AttributeError(f"module 'stackml.scoring' has no attribute {name!r}")
