"""Scoring beyond one HTTP request: whole warehouse tables in chunks (:func:`score_table`).

Example:
    >>> from stackml.scoring import score_table  # doctest: +SKIP
"""

from stackml.scoring.table import ScoredTable, score_table

__all__ = ["ScoredTable", "score_table"]
