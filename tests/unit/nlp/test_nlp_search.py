"""Hyper-parameter search: studies on SQLite and PostgreSQL, continued by a second call; pruning (with a
scripted stand-in for an iterative fit: no transformer is fine-tuned here); the errors. Real fits use the
``tfidf`` kind and 3 trials."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackml.errors import ConnectionFailedError, InputError
from stackml.nlp import search as search_module
from stackml.nlp.search import SEARCH_SPACES, SearchResult, search

pytest.importorskip("sklearn")
optuna = pytest.importorskip("optuna")


def _check_tfidf_params(params: dict) -> None:
    assert set(params) == {"c", "min_df"}
    assert 0.5 <= params["c"] <= 100.0
    assert params["min_df"] in (1, 2)


def test_sqlite_study_is_searched_then_continued(train_set, test_set, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies' / 'optuna.db'}"  # the folder is created
    rows: list[tuple[int, dict]] = []
    first = search(
        "tfidf",
        *train_set,
        trials=3,
        storage=storage,
        study_name="intents",
        progress=lambda n, r: rows.append((n, r)),
    )
    assert isinstance(first, SearchResult)
    assert (first.study_name, first.storage) == ("intents", storage)
    history = first.history
    assert list(history.columns) == ["number", "state", "value", "c", "min_df", "seconds"]
    assert history["number"].tolist() == [0, 1, 2] and set(history["state"]) == {"COMPLETE"}
    assert history["value"].between(0.0, 1.0).all() and (history["seconds"] > 0).all()
    assert first.best_value == history["value"].max()
    _check_tfidf_params(first.best_params)
    # the progress callback saw each finished trial, with the running best
    assert [n for n, _ in rows] == [0, 1, 2]
    assert rows[-1][1]["best_value"] == first.best_value and rows[0][1]["state"] == "COMPLETE"
    # the best classifier of this call is kept, fitted with the best settings
    clf = first.best_classifier
    assert clf is not None and clf.params == first.best_params
    texts, labels = test_set
    assert clf.evaluate(texts, labels)["accuracy"] >= 0.8

    again = search("tfidf", *train_set, trials=3, storage=storage, study_name="intents")
    assert again.history["number"].tolist() == [0, 1, 2, 3, 4, 5]
    assert again.history["value"].between(0.0, 1.0).all()
    assert again.best_value >= first.best_value
    # trials are seeded by their number, so the continued study draws new settings, not the first three
    assert again.history["c"].nunique() == 6
    # the best trial may come from the first call, whose classifier this call does not hold
    best_number = int(again.history["number"][again.history["value"].idxmax()])
    assert (again.best_classifier is None) == (best_number < 3)


def test_default_storage_is_the_home_and_the_name_follows_the_data(train_set, isolated_home: Path) -> None:
    result = search("tfidf", *train_set, trials=1)
    assert (isolated_home / "optuna.db").is_file()
    assert result.storage == f"sqlite:///{isolated_home / 'optuna.db'}"
    assert result.study_name.startswith("nlp-tfidf-")
    texts, labels = train_set
    other = search_module.default_study_name("tfidf", texts[:-1], labels[:-1], {})
    fixed = search_module.default_study_name("tfidf", texts, labels, {"max_features": 1000})
    assert len({result.study_name, other, fixed}) == 3


@pytest.fixture
def postgres_storage(postgres_url: str) -> Iterator[tuple[str, str]]:
    """The session's PostgreSQL database, with the study in a schema of its own (dropped afterwards), so
    Optuna's tables do not show up in the warehouse tests that list the database's tables."""
    psycopg = pytest.importorskip("psycopg")
    schema = f"optuna_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    joiner = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{joiner}options=-csearch_path%3D{schema}", schema
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.postgres
def test_postgres_study_is_shared_between_calls(train_set, postgres_storage, postgres_url: str) -> None:
    import psycopg

    from stackml.warehouse.base import redact_url

    url, schema = postgres_storage
    first = search("tfidf", *train_set, trials=3, storage=url, study_name="shared")
    assert first.storage == redact_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    assert len(first.history) == 3 and first.best_classifier is not None
    _check_tfidf_params(first.best_params)
    # the trials are rows in PostgreSQL, where another worker finds them and adds its own
    with psycopg.connect(postgres_url) as conn:
        (count,) = conn.execute(f'SELECT count(*) FROM "{schema}".trials').fetchone()
    assert count == 3
    second = search("tfidf", *train_set, trials=1, storage=url, study_name="shared", seed=0)
    assert second.history["number"].tolist() == [0, 1, 2, 3]
    assert set(second.history["state"]) == {"COMPLETE"}


class ScriptedFit:
    """Stands in for an iterative (minilm) fit: each fit reports its scripted validation accuracy after
    each of four epochs, through the progress callback the search passes in."""

    scores: list[float] = []
    epochs_run: list[int] = []
    made: list[ScriptedFit] = []

    def __init__(self, kind: str, *, random_state: int, **params) -> None:
        self.kind, self.random_state, self.params = kind, random_state, params
        self.made.append(self)

    def fit(self, texts, labels, *, progress=None) -> ScriptedFit:
        score = self.scores[len(self.epochs_run) % len(self.scores)]
        self.epochs_run.append(0)
        for epoch in range(1, 5):
            self.epochs_run[-1] = epoch
            progress(epoch, {"epoch": float(epoch), "val_accuracy": score})
        self.validation_scores_ = {"accuracy": score, "macro_f1": score}
        return self


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> type[ScriptedFit]:
    class Fit(ScriptedFit):
        scores, epochs_run, made = [0.8, 0.9, 0.85, 0.1, 0.95], [], []

    monkeypatch.setattr(search_module, "TextClassifier", Fit)
    return Fit


def test_a_poor_iterative_trial_is_pruned_after_the_warm_up_epoch(train_set, tmp_path, scripted) -> None:
    rows: list[dict] = []
    result = search(
        "minilm",
        *train_set,
        trials=5,
        storage=f"sqlite:///{tmp_path / 'o.db'}",
        fixed={"epochs": 4},
        progress=lambda n, row: rows.append(row),
    )
    history = result.history
    assert history["state"].tolist() == ["COMPLETE"] * 3 + ["PRUNED", "COMPLETE"]
    # trial 3 survives its first epoch (the warm-up), then falls below the median of the three before it
    assert scripted.epochs_run == [4, 4, 4, 2, 4]
    assert math.isnan(history["value"][3]) and rows[3]["state"] == "PRUNED"
    assert result.best_value == 0.95 and result.best_classifier is scripted.made[4]
    # the sampled settings stay within the space; fixed ones are passed through, not searched
    made = scripted.made[4]
    assert made.params["epochs"] == 4 and made.random_state == 0
    assert set(result.best_params) == set(SEARCH_SPACES["minilm"])
    assert 3e-5 <= result.best_params["learning_rate"] <= 3e-4
    assert result.best_params["batch_size"] in (16, 32) and 0.0 <= result.best_params["warmup"] <= 0.1


def test_the_same_seed_draws_the_same_settings(train_set, tmp_path, scripted) -> None:
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    a = search("minilm", *train_set, trials=2, storage=storage, study_name="a", fixed={"learning_rate": 1e-4})
    b = search("minilm", *train_set, trials=2, storage=storage, study_name="b", fixed={"learning_rate": 1e-4})
    c = search("minilm", *train_set, trials=2, storage=storage, study_name="c", seed=1)
    assert "learning_rate" not in a.history.columns  # fixed, so not searched
    assert a.history[["batch_size", "warmup"]].equals(b.history[["batch_size", "warmup"]])
    assert not a.history["warmup"].equals(c.history["warmup"])


def test_errors_say_what_was_wrong_and_how_to_fix_it(train_set, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"'bert'.*\['embed-linear', 'minilm', 'tfidf'\]"):
        search("bert", *train_set)
    with pytest.raises(InputError, match="trials must be a whole number of at least 1; got 0") as err:
        search("tfidf", *train_set, trials=0)
    assert "trials=10" in err.value.hint
    with pytest.raises(InputError, match=r"no parameter\(s\) \['epochs'\]"):
        search("tfidf", *train_set, fixed={"epochs": 3})
    with pytest.raises(InputError, match="storage must be a database URL; got 'optuna.db'"):
        search("tfidf", *train_set, storage="optuna.db")
    with pytest.raises(ConnectionFailedError, match="Cannot open the Optuna storage") as refused:
        search("tfidf", *train_set, storage="postgresql://stackml:s3cret@127.0.0.1:1/studies")
    assert "s3cret" not in str(refused.value) and "stackml:***@127.0.0.1:1" in str(refused.value)
    assert "server is running" in refused.value.hint


def test_a_study_of_another_kind_is_not_continued(train_set, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    optuna.create_study(storage=storage, study_name="mine", direction="maximize").set_user_attr(
        "kind", "minilm"
    )
    with pytest.raises(InputError, match="The study 'mine' is a 'minilm' study") as err:
        search("tfidf", *train_set, storage=storage, study_name="mine")
    assert "study_name" in err.value.hint
