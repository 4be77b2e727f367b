"""HTML fragments of a report: paragraphs, tables, metric cards and figures.

Every piece of user text goes through :func:`html.escape` here, so the page template only ever
receives finished, safe HTML.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from html import escape
from typing import Any

from stackml.errors import InputError
from stackml.reports._format import column_formatter, format_number, format_value, is_missing
from stackml.reports._frames import index_is_data

__all__ = ["figure_block", "figure_json", "metrics_block", "paragraphs", "table_block"]

_BLANK_LINE = re.compile(r"\n\s*\n")


def paragraphs(text: str, *, css_class: str | None = None) -> str:
    """Escape ``text`` and split it into ``<p>`` elements at blank lines."""
    parts = [p.strip() for p in _BLANK_LINE.split(text.strip())]
    attr = f' class="{css_class}"' if css_class else ""
    # A single line break inside a paragraph is kept, as in the author's text.
    return "\n".join(f"<p{attr}>{escape(p).replace(chr(10), '<br>')}</p>" for p in parts if p)


def _caption(kind: str, number: int, caption: str | None) -> str:
    text = f"<b>{kind} {number}.</b>"
    if caption:
        text += f" {escape(caption)}"
    return f"<figcaption>{text}</figcaption>"


def _label(value: Any) -> str:
    """A column or index label; MultiIndex tuples read as ``a / b``."""
    if isinstance(value, tuple):
        return " / ".join(str(v) for v in value)
    return "" if value is None else str(value)


def table_block(
    df: Any, number: int, caption: str | None, fmt: Callable[[float], str] | None, max_rows: int
) -> str:
    """Render a DataFrame as a styled table; numeric columns are right-aligned.

    With ``fmt=None`` each float column gets its own format (see :func:`column_formatter`).
    """
    import pandas as pd

    show_index = index_is_data(df)
    shown = df.head(max_rows)
    numeric = [
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype) for dtype in df.dtypes
    ]

    formats = [
        fmt or (column_formatter(shown.iloc[:, i]) if pd.api.types.is_float_dtype(dtype) else format_number)
        for i, dtype in enumerate(df.dtypes)
    ]
    index_fmt = fmt or format_number

    head = []
    if show_index:
        names = [_label(n) for n in df.index.names]
        head += [f"<th>{escape(n)}</th>" for n in names]
    head += [
        f'<th class="num">{escape(_label(c))}</th>' if num else f"<th>{escape(_label(c))}</th>"
        for c, num in zip(df.columns, numeric, strict=True)
    ]

    rows = []
    for idx, values in zip(shown.index, shown.itertuples(index=False, name=None), strict=True):
        cells = []
        if show_index:
            keys = idx if isinstance(idx, tuple) else (idx,)
            cells += [f"<th>{escape(format_value(k, index_fmt))}</th>" for k in keys]
        for value, num, col_fmt in zip(values, numeric, formats, strict=True):
            if is_missing(value):
                cells.append('<td class="missing">&mdash;</td>')
            else:
                cls = ' class="num"' if num else ""
                cells.append(f"<td{cls}>{escape(format_value(value, col_fmt))}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    if not rows:
        rows.append(f'<tr><td class="empty" colspan="{max(len(head), 1)}">No rows.</td></tr>')

    note = ""
    if len(df) > len(shown):
        note = f'<div class="table-note">Showing the first {len(shown):,} of {len(df):,} rows.</div>'
    return (
        '<figure class="block table-block"><div class="table-wrap"><table class="data">'
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>"
        f"{note}{_caption('Table', number, caption)}</figure>"
    )


def metrics_block(metrics: Mapping[str, Any], fmt: Callable[[float], str]) -> str:
    """Render key figures as a row of cards, in the order given."""
    cards = [
        '<div class="metric">'
        f'<div class="metric-label">{escape(str(label))}</div>'
        f'<div class="metric-value">{escape(format_value(value, fmt)) or "&mdash;"}</div>'
        "</div>"
        for label, value in metrics.items()
    ]
    return f'<section class="metrics">{"".join(cards)}</section>'


def figure_json(fig: Any) -> str:
    """Serialise a plotly figure to JSON that is safe inside a ``<script>`` element.

    plotly escapes ``<``, ``>`` and ``/`` in its JSON, so text such as ``</script>`` in a trace name
    cannot end the element early; we still check, because the page's safety depends on it.
    """
    import plotly.io as pio
    from plotly.basedatatypes import BaseFigure

    if not isinstance(fig, BaseFigure):
        raise InputError(
            f"add_figure expects a plotly Figure, got {type(fig).__name__}.",
            hint="Build it with plotly.graph_objects.Figure(...) or plotly.express; "
            "for matplotlib, save a PNG and report the numbers as a table instead.",
        )
    text = pio.to_json(fig, validate=False)
    if "</" in text or "<!--" in text:
        text = text.replace("<", "\\u003c")
    return text


def figure_block(spec_json: str, number: int, caption: str | None) -> str:
    """A container the page script fills with ``Plotly.newPlot`` from the JSON beside it."""
    data_id = f"figure-{number}-data"
    return (
        '<figure class="block figure-block">'
        f'<div class="plotly-figure" id="figure-{number}" data-figure="{data_id}"></div>'
        f'<script type="application/json" id="{data_id}">{spec_json}</script>'
        f"{_caption('Figure', number, caption)}</figure>"
    )
