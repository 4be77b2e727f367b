"""One NLP run's result: what the report, the registry and the CLI read, and how it is published.

:class:`NLPResult` implements :class:`stackml.pipelines.Publishable`. Its primary metric is the chosen
model's validation macro-F1; two versions are compared only when they were validated on the same split of
the same data (same texts, labels, share and seed). The registered model is the variant chosen to serve (the
int8 ONNX copy of a fine-tuned transformer when it keeps its accuracy, else the model itself); the other
variant is registered beside it under a name suffix.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stackml.pipelines import ModelToRegister, finite_metrics

if TYPE_CHECKING:
    from stackml.nlp.classifier import TextClassifier
    from stackml.nlp.config import NLPConfig

__all__ = ["NLPResult"]

# the name suffix of a registered variant that is not the one served
VARIANT_SUFFIX = {"model": "-fp32", "onnx-int8": "-int8"}


@dataclass
class NLPResult:
    """Everything a report, the registry and the CLI need from one run."""

    config: NLPConfig
    classifiers: dict[str, TextClassifier]
    best: str
    searches: dict[str, pd.DataFrame]
    test_scores: dict[str, dict[str, float]] | None
    predictors: dict[str, Any]  # variant -> object with predict_proba(texts)
    latency: dict[str, dict[str, float]]  # variant -> p50_ms, p99_ms, texts_per_s, val_accuracy
    serving: str  # the variant registered as the model
    validation_texts: list[str]
    validation_labels: list[str]
    test: pd.DataFrame | None = None
    n_train: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    pipeline = "nlp"
    higher_is_better = True
    passed = True  # nothing gates a text classifier; the champion comparison keeps a worse one out

    @property
    def primary_metric(self) -> str:
        return self.config.primary_metric

    @property
    def chosen(self) -> TextClassifier:
        return self.classifiers[self.best]

    def failed_gates(self) -> list[str]:
        return []

    # -- the publish protocol --------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        cfg = self.config
        params = {
            k: ",".join(v) if isinstance(v, tuple) else ("" if v is None else v)
            for k, v in cfg.model_dump(exclude={"storage"}).items()
        }
        params |= {
            "best_model": self.best,
            "serving_variant": self.serving,
            "classes": len(self.chosen.classes_),
        }
        for kind, clf in self.classifiers.items():
            params |= {f"{kind}.{k}": v for k, v in clf.model_.params().items()}
        return params

    def metrics(self) -> dict[str, float]:
        best = self.chosen.validation_scores_
        metrics: dict[str, Any] = {"val_accuracy": best["accuracy"], "val_macro_f1": best["macro_f1"]}
        for kind, clf in self.classifiers.items():
            metrics |= {f"{kind}_val_{k}": v for k, v in clf.validation_scores_.items()}
            metrics[f"{kind}_fit_seconds"] = clf.fit_seconds_
            metrics[f"{kind}_truncated"] = clf.truncated_
        if self.test_scores is not None:
            metrics |= {f"test_{k}": v for k, v in self.test_scores[self.best].items()}
            for kind, scores in self.test_scores.items():
                metrics |= {f"{kind}_test_{k}": v for k, v in scores.items()}
        for variant, numbers in self.latency.items():
            metrics |= {f"{variant}_{k}": v for k, v in numbers.items()}
        metrics |= {f"seconds_{k}": v for k, v in self.seconds.items()}
        return finite_metrics(metrics)

    def tables(self) -> dict[str, pd.DataFrame]:
        from stackml.nlp.report import per_class_table

        tables = {"per_class": per_class_table(self)}
        for kind, history in self.searches.items():
            tables[f"search_{kind}"] = history
        for kind, clf in self.classifiers.items():
            tables[f"history_{kind}"] = pd.DataFrame(clf.history_)
        return tables

    def comparison_key(self, frame: pd.DataFrame) -> str:
        """Same training data, same columns, same validation split: the macro-F1s compare."""
        from stackml.tracking import data_fingerprint

        cfg = self.config
        key = json.dumps(
            [data_fingerprint(frame), cfg.validation_share, cfg.random_state, cfg.primary_metric], default=str
        )
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def models(self, frame: pd.DataFrame) -> list[ModelToRegister]:
        """The serving variant as the model; the other variant (if any) under its suffix."""
        from stackml.nlp.registry_model import example_input, model_to_register

        variants = [self.serving] + [
            v for v in ("model", "onnx-int8") if v in self.predictors and v != self.serving
        ]
        example = example_input(self.validation_texts)
        return [
            model_to_register(self.predictors[v], self.chosen.classes_, self.config.top_k, example, suffix)
            for v, suffix in zip(variants, ["", *(VARIANT_SUFFIX[v] for v in variants[1:])])
        ]

    # -- what the CLI prints ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """``{"models": {kind: {"accuracy", "macro_f1"}}, "best", "inference": {...}}``: test scores when a
        test file was given, else validation scores (``scored_on`` says which)."""
        source = self.test_scores if self.test_scores is not None else None
        models = {
            kind: (source[kind] if source is not None else clf.validation_scores_)
            for kind, clf in self.classifiers.items()
        }
        serving = self.latency.get(self.serving, {})
        return {
            "models": {k: {m: float(np.round(v, 6)) for m, v in s.items()} for k, s in models.items()},
            "scored_on": "test" if source is not None else "validation",
            "best": self.best,
            "validation": self.chosen.validation_scores_,
            "inference": {
                "variant": self.serving,
                "p50_ms": serving.get("p50_ms"),
                "p99_ms": serving.get("p99_ms"),
                "variants": self.latency,
            },
            "truncated": {k: int(c.truncated_) for k, c in self.classifiers.items()},
            "epochs": {k: len(c.history_) for k, c in self.classifiers.items()},
            "fit_seconds": {k: round(float(c.fit_seconds_), 3) for k, c in self.classifiers.items()},
            "searched": {k: len(h) for k, h in self.searches.items()},
        }
