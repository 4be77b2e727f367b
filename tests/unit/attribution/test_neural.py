"""Neural path attribution: it finds the channel that drives conversion where last touch cannot, its credit
adds up, early stopping keeps the best weights, calibration does not hurt, a seed repeats a fit, the model
pickles and scores unseen channels, and bad input is named."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from stackml.attribution import Attribution, Paths
from stackml.attribution.neural import NeuralOptions, NeuralResult, fit_neural
from stackml.errors import InputError

pytest.importorskip("torch")

TINY = NeuralOptions(hidden_size=8, embedding_size=4, epochs=12, batch_size=256, learning_rate=0.02)
OTHERS = ["email", "social", "video"]


def journeys(n: int, seed: int = 0) -> tuple[list[list[str]], np.ndarray, list[list[float]]]:
    """Journeys where "search" converts (60% against 5%), mostly not as the last touch; "display" is
    everywhere and does nothing."""
    rng = np.random.default_rng(seed)
    paths, converted, gaps = [], [], []
    for _ in range(n):
        path = list(rng.choice(OTHERS, size=int(rng.integers(1, 4))))
        searched = rng.random() < 0.35
        if searched:
            path.insert(int(rng.integers(0, len(path))), "search")  # before the last of the others
        path.insert(int(rng.integers(0, len(path) + 1)), "display")
        paths.append(path)
        converted.append(rng.random() < (0.6 if searched else 0.05))
        gaps.append(sorted(np.round(rng.exponential(4.0, len(path)), 1).tolist(), reverse=True))
    return paths, np.asarray(converted, dtype=float), gaps


@pytest.fixture(scope="module")
def paths() -> Paths:
    """Aggregated: one row per distinct path, with counts (the form the model trains on without expanding)."""
    p, converted, _ = journeys(4000)
    return Paths.from_records(p, converted, value=10.0 * converted, nulls=1.0 - converted).aggregated()


@pytest.fixture(scope="module")
def fitted(paths: Paths) -> NeuralResult:
    return fit_neural(paths, TINY)


def test_the_channel_that_drives_conversion_gets_the_most_credit(paths: Paths, fitted: NeuralResult) -> None:
    credit = fitted.credit.set_index("channel")["conversions"]
    assert credit.idxmax() == "search"
    last = Attribution(["last_touch"]).fit(paths).table("conversions")["last_touch"]
    assert credit["search"] > last["search"] + 0.2 * paths.conversions
    assert credit["search"] / paths.conversions > 0.5


def test_credit_adds_up_and_the_best_weights_are_kept(paths: Paths, fitted: NeuralResult) -> None:
    assert list(fitted.credit.columns) == ["channel", "conversions", "value"]
    assert fitted.credit["conversions"].sum() == pytest.approx(paths.conversions)
    assert fitted.credit["value"].sum() == pytest.approx(paths.value)
    assert (fitted.credit["conversions"] >= 0).all()
    curve = fitted.learning_curve
    assert list(curve.columns) == ["epoch", "train_loss", "valid_loss"]
    assert 1 <= len(curve) == fitted.epochs_run <= TINY.epochs
    assert curve["valid_loss"].notna().all() and curve["train_loss"].notna().all()
    # the returned weights are the best epoch's: their validation loss (before calibration) is the curve's min
    assert fitted.calibration["log_loss_before"] == pytest.approx(curve["valid_loss"].min(), rel=1e-5)
    assert curve["valid_loss"].iloc[fitted.best_epoch - 1] == curve["valid_loss"].min()


def test_early_stopping_ends_an_easy_problem_before_the_last_epoch(paths: Paths) -> None:
    result = fit_neural(paths, NeuralOptions(**{**TINY.__dict__, "epochs": 60, "patience": 1}))
    assert result.epochs_run < 60
    assert result.best_epoch <= result.epochs_run


def test_calibration_does_not_hurt_on_validation(fitted: NeuralResult) -> None:
    c = fitted.calibration
    assert c["log_loss_after"] <= c["log_loss_before"] + 1e-9  # Platt scaling minimises it from identity
    assert c["brier_after"] <= c["brier_before"] + 1e-4
    assert 0 <= c["ece_after"] <= 1 and 0 <= c["ece_before"] <= 1
    assert c["temperature"] > 0


def test_the_same_seed_gives_the_same_credit(paths: Paths, fitted: NeuralResult) -> None:
    again = fit_neural(paths, TINY)
    pd.testing.assert_frame_equal(again.credit, fitted.credit)
    pd.testing.assert_frame_equal(again.learning_curve, fitted.learning_curve)


def test_the_model_pickles_and_scores_unseen_channels(fitted: NeuralResult) -> None:
    model = pickle.loads(pickle.dumps(fitted.model))
    probability, shares = model.predict([["display", "search", "email"], "video", ["tv", "search"]])
    assert probability.shape == (3,)
    assert ((probability > 0) & (probability < 1)).all()
    assert [len(s) for s in shares] == [3, 1, 2]
    for s in shares:
        assert (s >= 0).all() and s.sum() == pytest.approx(1.0)
    # scores agree with the model before pickling, and a path with search converts more than one without
    before, _ = fitted.model.predict([["display", "search", "email"]])
    assert before[0] == pytest.approx(probability[0], rel=1e-6)
    assert probability[0] > probability[1]


def test_journeys_with_time_gaps_train_and_score() -> None:
    p, converted, gaps = journeys(600, seed=1)
    result = fit_neural(
        Paths.from_records(p, converted, nulls=1.0 - converted, gaps=gaps),
        NeuralOptions(**{**TINY.__dict__, "epochs": 3, "max_touches": 2}),
    )
    assert result.credit["conversions"].sum() == pytest.approx(converted.sum())
    assert result.model.uses_gaps
    probability, shares = result.model.predict([["email", "search", "display"]], gaps=[[3.0, 1.0, 0.0]])
    # only the last two touches are read: the first gets no credit
    assert shares[0][0] == 0.0 and shares[0].sum() == pytest.approx(1.0)
    assert 0 < probability[0] < 1
    with pytest.raises(InputError, match="gaps"):
        result.model.predict([["email"]])


def test_bad_input_is_named() -> None:
    with pytest.raises(InputError, match="1 distinct channel"):
        fit_neural(Paths.from_records(["search", "search > search"], conversions=[1, 2], nulls=[3, 4]))
    with pytest.raises(InputError, match="no non-converting journeys"):
        fit_neural(Paths.from_records(["search", "email > search"], conversions=[1, 2]))
    with pytest.raises(InputError, match="hidden_size"):
        fit_neural(
            Paths.from_records(["search", "email"], conversions=[1, 2], nulls=[3, 4]),
            NeuralOptions(hidden_size=0),
        )
