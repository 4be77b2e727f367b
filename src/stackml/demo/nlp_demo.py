"""The NLP step of ``stackml demo``: a bundled slice of BANKING77 -> warehouse -> NLPFlow (TF-IDF and a
one-epoch MiniLM fine-tune, the better one quantised to int8 when it is the transformer) -> registry ->
report.

The slice is 8 intents x 50 training queries (and 20 test queries each), CC BY 4.0 (see
``demo/data/BANKING77_SOURCE.md``). One epoch keeps the step to about a minute on two cores; the CLI's
defaults train longer.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackml.demo import DemoContext

TEXTS_TABLE = "demo_support_messages"
MODEL_NAME = "nlp-demo-support-messages"
DEMO_SETTINGS = {"models": ("tfidf", "minilm"), "epochs": 1, "trials": 2, "max_length": 64}


def demo_file(split: str) -> Path:
    """The bundled ``train`` or ``test`` slice."""
    return Path(str(resources.files("stackml.demo") / "data" / f"banking77_demo_{split}.csv"))


def nlp_step(ctx: DemoContext) -> None:
    """Load the training slice into the warehouse and run NLPFlow on it, scoring the test slice."""
    from stackml.nlp.config import NLPConfig

    with ctx.warehouse() as warehouse:
        loaded = warehouse.ingest(demo_file("train"), TEXTS_TABLE, if_exists="replace")
    ctx.say(
        f"Loaded {loaded.rows:,} labelled support messages (8 BANKING77 intents) into "
        f"[bold]{TEXTS_TABLE}[/bold]; training TF-IDF and a one-epoch MiniLM fine-tune"
    )
    config = NLPConfig(test=str(demo_file("test")), **DEMO_SETTINGS)
    end = ctx.run_pipeline("nlp", config, TEXTS_TABLE, MODEL_NAME)
    summary = end.summary
    scores = ", ".join(f"{k} {v['accuracy']:.1%}" for k, v in summary["models"].items())
    ctx.say(f"Test accuracy: {scores}; chose [bold]{summary['best']}[/bold]; {end.published.note}")
