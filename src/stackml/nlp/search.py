"""Hyper-parameter search for a text model kind, with Optuna: a seeded TPE sampler, a median pruner, and
a study kept in a database so that a later call, or several workers at once, carry on with it.

Each trial fits :class:`~stackml.nlp.classifier.TextClassifier` with sampled settings and scores it by its
validation macro-F1 (the split held out of the training texts; a test set is never used to choose). The
transformer kind reports its validation accuracy after every epoch, and a trial that falls below the median
of earlier trials at the same epoch is stopped early.

Storage: by default a SQLite file ``optuna.db`` in the stackml home; a ``postgresql://`` URL (as the
warehouse uses) puts the study on PostgreSQL, so workers on several machines share it.

Example:
    >>> result = search("tfidf", texts, labels, trials=20)  # doctest: +SKIP
    >>> result.best_params, round(result.best_value, 3)  # doctest: +SKIP
    ({'c': 12.4, 'min_df': 1}, 0.934)
    >>> result.best_classifier.predict(["my card has not arrived"])  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stackml._deps import require
from stackml.errors import ConnectionFailedError, InputError
from stackml.nlp.classifier import DEFAULT_VALIDATION_SHARE, TextClassifier
from stackml.nlp.data import check_labels, clean_texts
from stackml.nlp.models import make_model

if TYPE_CHECKING:
    import optuna
    import pandas as pd

__all__ = ["SEARCH_SPACES", "SearchResult", "search"]

# Each parameter is either {"low", "high", "log"?} (a float range) or {"choices": [...]} (a categorical).
SEARCH_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "tfidf": {
        # Inverse regularisation of the logistic regression. Below ~0.5 short texts underfit (predictions
        # drift to the class priors); above ~100 the model memorises rare n-grams. Its effect is
        # multiplicative, hence log-uniform.
        "c": {"low": 0.5, "high": 100.0, "log": True},
        # Keep terms seen once (typos, codes: useful on small sets) or drop them (noise on large ones).
        "min_df": {"choices": [1, 2]},
    },
    "embed-linear": {
        # The embeddings are unit vectors, so each feature is small and the regression needs weak
        # regularisation: from 1 (strong) to 500 (almost none); log-uniform for the same reason as above.
        "c": {"low": 1.0, "high": 500.0, "log": True},
    },
    "minilm": {
        # A small encoder with a fresh head: from BERT's usual 3e-5 up to 3e-4, beyond which fine-tuning
        # tends to diverge. Log-uniform: learning rates matter by factors, not by differences.
        "learning_rate": {"low": 3e-5, "high": 3e-4, "log": True},
        # 16 gives twice the (noisier) steps per epoch, which helps small data sets; 32 is faster on CPUs.
        "batch_size": {"choices": [16, 32]},
        # Share of the steps spent warming up: none to a tenth, the range fine-tuning recipes use.
        "warmup": {"low": 0.0, "high": 0.1},
        # epochs (and patience, max_minutes) stay the caller's, through `fixed`: they set the budget.
    },
}

# Kinds that train over several epochs and report each; the others fit in one step, where pruning after
# the only epoch could only throw away a trial whose work is already done.
ITERATIVE_KINDS = frozenset({"minilm"})

# Random trials before TPE models the space: Optuna's default (10) would leave a 10-trial search random.
SAMPLER_STARTUP_TRIALS = 5
# Completed trials needed before any pruning: a median of one or two trials says little.
PRUNER_STARTUP_TRIALS = 3
# Epochs are reported as steps 1, 2, ...; steps below this are never pruned, so the first epoch is a warm-up
# (a fresh head's first-epoch accuracy says little about where a run ends up).
PRUNER_WARMUP_STEPS = 2

DEFAULT_STORAGE_FILE = "optuna.db"
CONNECT_TIMEOUT_SECONDS = 5


@dataclass
class SearchResult:
    """The outcome of :func:`search`.

    Attributes:
        best_params: the searched settings of the best trial in the study (``fixed`` ones not included).
        best_value: its validation macro-F1 (NaN when no trial has completed).
        study_name: the study's name, to continue it with another call.
        storage: the storage URL, password masked.
        history: one row per trial of the study (earlier calls and other workers included): ``number``,
            ``state``, ``value``, the searched parameters, ``seconds``.
        best_classifier: the fitted classifier of the best trial when this call ran it, else None.
    """

    best_params: dict[str, Any]
    best_value: float
    study_name: str
    storage: str
    history: pd.DataFrame
    best_classifier: TextClassifier | None = None


def search(
    kind: str,
    texts: Sequence[Any],
    labels: Sequence[Any],
    *,
    trials: int = 10,
    storage: str | None = None,
    study_name: str | None = None,
    timeout_minutes: float | None = None,
    seed: int = 0,
    fixed: dict[str, Any] | None = None,
    validation_share: float = DEFAULT_VALIDATION_SHARE,
    progress: Callable[[int, dict], None] | None = None,
) -> SearchResult:
    """Search the settings of ``kind`` that give the best validation macro-F1, with ``trials`` more trials.

    Args:
        kind: ``"tfidf"``, ``"embed-linear"`` or ``"minilm"`` (see :data:`SEARCH_SPACES`).
        texts, labels: the training data; each trial holds out the same validation split of it.
        trials: trials this call runs (a continued study keeps its earlier ones).
        storage: None for ``optuna.db`` in the stackml home, ``sqlite:///path``, or ``postgresql://...``
            for a study that several workers share.
        study_name: None derives one from the kind, the data and ``fixed``, so the same search run again
            continues its study, and a search on other data starts a new one.
        timeout_minutes: stop starting trials after this long (a trial in flight finishes).
        seed: seeds the validation split, the models and the sampler (mixed with each trial's number, so
            workers sharing a study draw different settings while a rerun draws the same). Workers sharing a
            study should use the same seed: it fixes the validation split, so their scores compare.
        fixed: settings of the kind not searched, e.g. ``{"epochs": 3}`` for ``minilm``; a searched
            setting given here is fixed instead of searched.
        validation_share: share of each class every trial holds out to validate on (part of the study's
            identity: scores on different splits do not compare).
        progress: called as ``progress(trial_number, row)`` after each finished trial, ``row`` holding the
            history's columns and ``best_value``.
    """
    _check_kind(kind)
    fixed = _check_fixed(kind, {} if fixed is None else fixed)
    # a setting the caller fixes is not searched: fix what you know, search the rest
    space = {name: spec for name, spec in SEARCH_SPACES[kind].items() if name not in fixed}
    _check_numbers(trials, timeout_minutes, seed)
    texts = clean_texts(texts, what="the training texts")
    labels = check_labels(texts, labels, min_per_class=2).tolist()
    optuna = require("optuna", extra="nlp")
    url = _storage_url(storage)
    split = {"validation_share": float(validation_share)}
    name = study_name or default_study_name(
        kind, texts, labels, fixed if split["validation_share"] == DEFAULT_VALIDATION_SHARE else fixed | split
    )
    with _quiet(optuna):
        study = _open_study(optuna, kind, url, name, seed)
        objective = _Objective(kind, texts, labels, space, fixed, seed, split["validation_share"])
        study.optimize(
            objective,
            n_trials=trials,
            timeout=None if timeout_minutes is None else 60.0 * timeout_minutes,
            callbacks=[_report_to(progress)] if progress is not None else None,
        )
        return _result(study, url, objective)


def default_study_name(kind: str, texts: Sequence[str], labels: Sequence[str], fixed: dict[str, Any]) -> str:
    """``nlp-<kind>-<digest>``: the digest of the data and the fixed settings, which the scores depend on."""
    digest = hashlib.sha256(json.dumps([kind, fixed], sort_keys=True, default=str).encode())
    for text, label in zip(texts, labels):
        digest.update(f"{text}\0{label}\0".encode())
    return f"nlp-{kind}-{digest.hexdigest()[:12]}"


def _check_kind(kind: Any) -> None:
    if kind not in SEARCH_SPACES:
        raise InputError(
            f"No search space for the text model kind {kind!r}; the kinds are {sorted(SEARCH_SPACES)}.",
            hint="Pick one of them, e.g. search('tfidf', texts, labels).",
        )


def _check_fixed(kind: str, fixed: dict[str, Any]) -> dict[str, Any]:
    """Fail before the first trial on a setting the kind does not take (the trial would fail on it later)."""
    if not isinstance(fixed, dict):
        raise InputError(
            f"fixed must be a dict of the {kind!r} model's settings; got {type(fixed).__name__} ({fixed!r}).",
            hint="Pass e.g. fixed={'epochs': 3}.",
        )
    make_model(kind, **fixed)  # raises InputError naming the unknown parameters
    return dict(fixed)


def _check_numbers(trials: Any, timeout_minutes: Any, seed: Any) -> None:
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise InputError(
            f"trials must be a whole number of at least 1; got {trials!r}.",
            hint="Pass e.g. trials=10 (a continued study adds that many to the trials it already has).",
        )
    if timeout_minutes is not None and not (isinstance(timeout_minutes, int | float) and timeout_minutes > 0):
        raise InputError(
            f"timeout_minutes must be a positive number of minutes or None; got {timeout_minutes!r}.",
            hint="Pass e.g. timeout_minutes=30, or None to run every trial.",
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a whole number >= 0; got {seed!r}.", hint="Pass e.g. seed=0.")


def _storage_url(storage: str | None) -> str:
    """The SQLAlchemy URL of ``storage``: the home's SQLite file by default, PostgreSQL through psycopg 3."""
    if storage is None:
        from stackml.config import get_settings

        return f"sqlite:///{get_settings().ensure_home() / DEFAULT_STORAGE_FILE}"
    if not isinstance(storage, str) or "://" not in storage:
        raise InputError(
            f"storage must be a database URL; got {storage!r}.",
            hint="Pass sqlite:///path/to/optuna.db, postgresql://user[:password]@host:port/dbname, "
            "or None for optuna.db in the stackml home.",
        )
    scheme, rest = storage.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        # SQLAlchemy's plain postgresql:// means psycopg2; stackml installs psycopg 3.
        require("psycopg", extra="postgres")
        return f"postgresql+psycopg://{rest}"
    return storage


def _rdb_storage(optuna: Any, url: str) -> Any:
    """Optuna's storage on ``url``, connected now so an unreachable database fails here, clearly."""
    from stackml.warehouse.base import redact_url

    sqlalchemy_exc = require("sqlalchemy.exc")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs: dict[str, Any] = {}
    else:
        # pre-ping: a worker's connection can sit idle for a whole (long) trial and be dropped meanwhile
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS}}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except sqlalchemy_exc.ArgumentError as exc:
        raise InputError(
            f"The storage URL {redact_url(url)} is not one SQLAlchemy can use: {exc}",
            hint="Use sqlite:///path/to/optuna.db or postgresql://user[:password]@host:port/dbname.",
        ) from exc
    except (sqlalchemy_exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise ConnectionFailedError(
            f"Cannot open the Optuna storage at {redact_url(url)}: {redact_url(reason)[:300]}",
            hint="Check that the database server is running and the URL is right "
            "(postgresql://user[:password]@host:port/dbname), or that the SQLite file's folder is writable.",
        ) from exc


def _open_study(optuna: Any, kind: str, url: str, name: str, seed: int) -> optuna.Study:
    """Create the study, or load it when it exists, and check that it is a study of ``kind``."""
    study = optuna.create_study(
        storage=_rdb_storage(optuna, url),
        study_name=name,
        direction="maximize",
        load_if_exists=True,
        sampler=_sampler(optuna, seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_STEPS
        ),
    )
    known = study.user_attrs.get("kind")
    wrong_direction = study.direction != optuna.study.StudyDirection.MAXIMIZE
    if known not in (None, kind) or wrong_direction:
        found = f"a {known!r} study" if known not in (None, kind) else "a study that minimises"
        raise InputError(
            f"The study {name!r} is {found}; this search maximises the macro-F1 of {kind!r}.",
            hint="Pass another study_name (or None to derive one from the kind and the data).",
        )
    if known is None:
        study.set_user_attr("kind", kind)
    return study


class _Objective:
    """Fits one classifier per trial; keeps the best one of this call in memory, the others are dropped."""

    def __init__(
        self,
        kind: str,
        texts: list[str],
        labels: list[str],
        space: dict[str, dict[str, Any]],
        fixed: dict[str, Any],
        seed: int,
        validation_share: float = DEFAULT_VALIDATION_SHARE,
    ) -> None:
        self.kind, self.texts, self.labels = kind, texts, labels
        self.space, self.fixed, self.seed = space, fixed, seed
        self.validation_share = validation_share
        self.best_number: int | None = None
        self.best_value = -math.inf
        self.best_classifier: TextClassifier | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        sampled = {name: _suggest(trial, name, spec) for name, spec in self.space.items()}
        clf = TextClassifier(
            self.kind, validation_share=self.validation_share, random_state=self.seed, **self.fixed, **sampled
        )
        started = time.perf_counter()
        clf.fit(self.texts, self.labels, progress=_pruning(trial) if self.kind in ITERATIVE_KINDS else None)
        trial.set_user_attr("fit_seconds", time.perf_counter() - started)
        value = float(clf.validation_scores_["macro_f1"])
        if value > self.best_value:
            self.best_number, self.best_value, self.best_classifier = trial.number, value, clf
        return value


def _sampler(optuna: Any, seed: int) -> Any:
    """TPE, re-seeded for each trial from ``(seed, trial number)``.

    One seed for the whole call would make every worker that starts on a shared study at the same moment
    draw the same random start-up trials (a waste of fits), and a continued study repeat the first call's
    draws. Seeding by trial number keeps a rerun reproducible and gives each trial its own draw.
    """

    class TrialSeededTPE(optuna.samplers.BaseSampler):
        def __init__(self) -> None:
            self._tpe = self._for(0)

        @staticmethod
        def _for(number: int) -> Any:
            mixed = int(np.random.SeedSequence([seed, number]).generate_state(1)[0])
            return optuna.samplers.TPESampler(seed=mixed, n_startup_trials=SAMPLER_STARTUP_TRIALS)

        def before_trial(self, study: Any, trial: Any) -> None:  # called before anything is sampled
            self._tpe = self._for(trial.number)
            self._tpe.before_trial(study, trial)

        def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
            return self._tpe.infer_relative_search_space(study, trial)

        def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
            return self._tpe.sample_relative(study, trial, search_space)

        def sample_independent(self, study: Any, trial: Any, name: str, distribution: Any) -> Any:
            return self._tpe.sample_independent(study, trial, name, distribution)

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            self._tpe.after_trial(study, trial, state, values)

    return TrialSeededTPE()


def _suggest(trial: optuna.Trial, name: str, spec: dict[str, Any]) -> Any:
    if "choices" in spec:
        return trial.suggest_categorical(name, spec["choices"])
    return trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))


def _pruning(trial: optuna.Trial) -> Callable[[int, dict], None]:
    """A fit's ``progress`` callback that reports each epoch's validation accuracy and stops a poor trial."""
    optuna = require("optuna", extra="nlp")

    def report(epoch: int, row: dict) -> None:
        if "val_accuracy" not in row:
            return
        trial.report(float(row["val_accuracy"]), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(
                f"validation accuracy {row['val_accuracy']:.3f} after epoch {epoch} is below the median of "
                "earlier trials"
            )

    return report


def _trial_row(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    end = trial.datetime_complete
    seconds = (end - trial.datetime_start).total_seconds() if end and trial.datetime_start else math.nan
    value = trial.value if trial.state.name == "COMPLETE" else None
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": math.nan if value is None else float(value),
        **trial.params,
        "seconds": seconds,
    }


def _history(trials: list[optuna.trial.FrozenTrial]) -> pd.DataFrame:
    import pandas as pd

    params = list(dict.fromkeys(name for t in trials for name in t.params))
    columns = ["number", "state", "value", *params, "seconds"]
    return pd.DataFrame([_trial_row(t) for t in trials], columns=columns)


def _best_value(study: optuna.Study) -> float:
    try:
        return float(study.best_value)
    except ValueError:  # no completed trial yet
        return math.nan


def _report_to(progress: Callable[[int, dict], None]) -> Callable[[Any, Any], None]:
    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        progress(trial.number, {**_trial_row(trial), "best_value": _best_value(study)})

    return callback


def _result(study: optuna.Study, url: str, objective: _Objective) -> SearchResult:
    from stackml.warehouse.base import redact_url

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = study.best_trial if complete else None
    return SearchResult(
        best_params=dict(best.params) if best else {},
        best_value=float(best.value) if best else math.nan,
        study_name=study.study_name,
        storage=redact_url(url),
        history=_history(trials),
        best_classifier=objective.best_classifier if best and best.number == objective.best_number else None,
    )


@contextlib.contextmanager
def _quiet(optuna: Any) -> Iterator[None]:
    """Optuna logs every trial at INFO, which would tear through progress bars; warnings still show."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)
