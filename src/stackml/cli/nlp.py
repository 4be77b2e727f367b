"""``stackml nlp train`` and ``stackml nlp predict``: the NLP pipeline (NLPFlow) and a registered classifier.

Exit codes as everywhere: 2 for bad input (missing columns, empty or non-UTF-8 texts, one class, a test label
the training data lacks), checked before the flow starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from stackml.cli._pipeline import (
    DataOption,
    JsonOption,
    ModelNameOption,
    RegisterOption,
    TableOption,
    WarehouseOption,
    default,
)
from stackml.nlp.config import NLPConfig

nlp_app = typer.Typer(
    help="Text classification: TF-IDF, sentence embeddings and a fine-tuned MiniLM; quantised, registered.",
    no_args_is_help=True,
)


def _default(field: str) -> Any:
    value = default(NLPConfig, field)
    return ",".join(value) if isinstance(value, tuple) else value


@nlp_app.command("train")
def train(
    data: DataOption = None,
    table: TableOption = None,
    text_column: Annotated[str, typer.Option("--text-column", help="The text column.")] = _default(
        "text_column"
    ),
    label_column: Annotated[str, typer.Option("--label-column", help="The label column.")] = _default(
        "label_column"
    ),
    test: Annotated[
        Optional[Path],
        typer.Option("--test", help="A labelled test file (same columns), scored after the choice."),
    ] = None,
    models: Annotated[
        str, typer.Option("--models", help="Model kinds to train and compare: tfidf, embed-linear, minilm.")
    ] = _default("models"),
    trials: Annotated[
        int, typer.Option("--trials", help="Optuna trials per searched kind (0: the kinds' defaults).")
    ] = _default("trials"),
    searched: Annotated[
        str, typer.Option("--searched", help="The kinds whose settings the trials search.")
    ] = _default("searched"),
    storage: Annotated[
        Optional[str],
        typer.Option(
            "--storage", help="Optuna storage: postgresql://... or sqlite:///... (default: a local file)."
        ),
    ] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Most epochs of the fine-tune.")] = _default(
        "epochs"
    ),
    max_minutes: Annotated[
        Optional[float], typer.Option("--max-minutes", help="Wall-clock budget of the fine-tune, minutes.")
    ] = _default("max_minutes"),
    max_length: Annotated[
        int, typer.Option("--max-length", help="Tokens per text the transformers read (longer ones are cut).")
    ] = _default("max_length"),
    quantize: Annotated[
        bool, typer.Option("--quantize/--no-quantize", help="Export a fine-tuned transformer to ONNX int8.")
    ] = _default("quantize"),
    seed: Annotated[
        int, typer.Option("--seed", help="Seeds the split, the models and the search.")
    ] = _default("random_state"),
    warehouse: WarehouseOption = None,
    model_name: ModelNameOption = None,
    register: RegisterOption = True,
    as_json: JsonOption = False,
) -> None:
    """Train and compare text classifiers, quantise the best, register it and write a report."""
    from stackml.cli._pipeline import emit, open_source, run_command

    config = NLPConfig(
        text_column=text_column,
        label_column=label_column,
        test=str(test) if test else None,
        models=models,
        trials=trials,
        searched=searched,
        storage=storage,
        epochs=epochs,
        max_minutes=max_minutes,
        max_length=max_length,
        quantize=quantize,
        random_state=seed,
    )
    source = open_source(data, table, warehouse, check=lambda src, wh: _check_data(config, src, wh))
    name = model_name or source.default_model_name("nlp")
    end, shared = run_command(
        "nlp", config, source, model_name=name, register=register, warehouse=warehouse, as_json=as_json
    )
    emit(end.summary | shared, as_json, _print_train)


def _check_data(config: NLPConfig, source: Any, warehouse: Any) -> None:
    from stackml.nlp.pipeline import load, load_test

    load_test(config, load(config, source, warehouse))  # every bad row named before the flow starts


def _print_train(summary: dict[str, Any]) -> None:
    import pandas as pd

    from stackml.cli.output import console, print_frame

    rows = [
        {"model": k, "accuracy": f"{v['accuracy']:.1%}", "macro-F1": f"{v['macro_f1']:.1%}"}
        | {"chosen": "yes" if k == summary["best"] else ""}
        for k, v in summary["models"].items()
    ]
    print_frame(pd.DataFrame(rows), title=f"Text classifiers ({summary['scored_on']} scores)")
    out = console()
    inference = summary["inference"]
    if inference.get("p50_ms") is not None:
        out.print(
            f"Served as {inference['variant']}: p50 {inference['p50_ms']:.1f} ms, "
            f"p99 {inference['p99_ms']:.1f} ms per text on this machine."
        )
    out.print(summary["registry_note"])
    out.print(f"Report: {summary['report']}")


@nlp_app.command("predict")
def predict(
    model: Annotated[
        str, typer.Option("--model", help="Registered model: NAME (its champion) or NAME@ALIAS.")
    ],
    text: Annotated[list[str], typer.Option("--text", help="A text to classify (repeat for several).")],
    as_json: JsonOption = False,
) -> None:
    """Classify texts with a registered text classifier: label, probability and the runners-up."""
    import pandas as pd

    from stackml import tracking

    loaded = tracking.load_model(model if "@" in model else f"{model}@champion")
    predictions = loaded.predict(pd.DataFrame({"text": list(text)}))
    rows = [
        {"text": t, **{k: v for k, v in row.items()}} for t, row in zip(text, predictions.to_dict("records"))
    ]
    if as_json:
        from stackml.cli.output import print_json

        print_json({"model": model, "predictions": rows})
        return
    from stackml.cli.output import print_frame

    print_frame(pd.DataFrame(rows), title=f"Predictions of {model}")
