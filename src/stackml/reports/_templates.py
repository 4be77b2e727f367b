"""The page templates and the inline plotly.js, read once per process."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from string import Template

__all__ = ["asset", "plotly_js", "template"]


@cache
def asset(name: str) -> str:
    """Text of ``templates/<name>`` shipped inside the package."""
    return files("stackml.reports").joinpath("templates", name).read_text(encoding="utf-8")


def template(name: str) -> Template:
    """A ``string.Template`` over ``templates/<name>``; the HTML is fixed, so no engine is needed."""
    return Template(asset(name))


@cache
def plotly_js() -> str:
    """The full plotly.js bundle (about 4.8 MB) so the page draws figures with no network at all."""
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    # Inlined in <script>; the bundle never contains this today, but a future one must not end it early.
    return js.replace("</script", "<\\/script")
