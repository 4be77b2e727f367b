"""Neural path attribution: a small GRU learns P(convert | path), integrated gradients split the credit.

The rules and the Markov chain fix in advance how a path's channels interact; a sequence model learns it
from the converting and non-converting journeys instead, including order and recency (the days from each
touch to the journey's end when the paths carry them). Credit is then read off the fitted model with
integrated gradients: each touch's share of the rise in conversion probability from a baseline where every
touch is blank (the padding embedding, recency kept) to the real path.

Why these choices:

* aggregated paths carry counts, so each row is one positive example weighted by its conversions and one
  negative example weighted by its nulls (weighted log-loss), never expanded into journeys; identical
  inputs are merged, so journey-level data without time gaps trains as fast as the aggregated form;
* the validation share is drawn from the counts of every row (binomially), so aggregated data with few
  distinct paths still validates on the same paths it trains on, and journey-level data (counts 0/1) is
  split journey by journey;
* a Platt scaling (a temperature and a bias on the logit) fitted on the validation split calibrates the
  probabilities, since integrated gradients of the probability depend on its scale;
* torch is imported inside the functions, so importing this module stays cheap; the fitted model keeps its
  weights as numpy arrays and rebuilds the network on first use, so it pickles into an MLflow pyfunc.

Example:
    >>> from stackml.attribution import Paths  # doctest: +SKIP
    >>> from stackml.attribution.neural import NeuralOptions, fit_neural  # doctest: +SKIP
    >>> paths = Paths.from_records(["search > email", "display"], conversions=[30, 2], nulls=[50, 90])
    >>> fit_neural(paths, NeuralOptions(epochs=10)).credit  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from stackml._deps import require
from stackml.attribution.paths import SEPARATOR, Paths
from stackml.errors import InputError

__all__ = ["NeuralOptions", "NeuralModel", "NeuralResult", "fit_neural"]

PAD, UNKNOWN = 0, 1  # reserved indices of the channel vocabulary
_MIN_STEPS_PER_EPOCH = 20  # a handful of distinct paths still gets enough optimiser steps per epoch
_BUCKET_BATCHES = 16  # batches drawn together and sorted by length, so little of a batch is padding
_ECE_BINS = 10
_MIN_IMPROVEMENT = 1e-4  # relative fall in validation loss that counts as better (noise does not)


@dataclass(frozen=True)
class NeuralOptions:
    """Size and training of the sequence model.

    Attributes:
        hidden_size: GRU state size.
        embedding_size: size of a channel's embedding.
        max_touches: only the last ``max_touches`` touches of a path are read (older ones get no credit).
        epochs: the most passes over the training examples (early stopping usually ends sooner).
        batch_size: examples per optimiser step.
        learning_rate: Adam's step size.
        patience: epochs without a better validation loss before training stops.
        validation_share: share of each row's journeys held out for early stopping and calibration.
        ig_steps: points on the straight line from the baseline to the input for integrated gradients.
        random_state: seed of the split, the initial weights and the batch order.
        time_budget_seconds: stop training (keeping the best weights so far) after this long.
        threads: torch CPU threads; ``None`` uses every core.
    """

    hidden_size: int = 32
    embedding_size: int = 16
    max_touches: int = 20
    epochs: int = 30
    batch_size: int = 1024
    learning_rate: float = 0.005
    patience: int = 3
    validation_share: float = 0.2
    ig_steps: int = 24
    random_state: int = 0
    time_budget_seconds: float | None = None
    threads: int | None = None

    def problems(self) -> list[str]:
        """Every invalid setting, as text (empty when all are fine)."""
        out = []
        for name in ("hidden_size", "embedding_size", "max_touches", "epochs", "batch_size", "ig_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                out.append(f"{name} must be a whole number >= 1, got {value!r}")
        if not isinstance(self.patience, int) or self.patience < 0:
            out.append(f"patience must be a whole number >= 0, got {self.patience!r}")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            out.append(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not (isinstance(self.validation_share, (int, float)) and 0 < self.validation_share < 1):
            out.append(f"validation_share must be between 0 and 1 (exclusive), got {self.validation_share!r}")
        if self.time_budget_seconds is not None and not self.time_budget_seconds > 0:
            out.append(f"time_budget_seconds must be > 0 or None, got {self.time_budget_seconds!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            out.append(f"threads must be a whole number >= 1 or None, got {self.threads!r}")
        return out


@dataclass
class NeuralModel:
    """A fitted sequence model, picklable: weights as numpy arrays, the network rebuilt on first use.

    Attributes:
        channels: the vocabulary; channel ``channels[i]`` has index ``i + 2`` (0 pads, 1 is any channel not
            seen in training).
        options: the options it was trained with (sizes are needed to rebuild it).
        uses_gaps: whether the recency input is days (``log1p(gap)``) rather than steps before the end.
        temperature, bias: the calibration, ``P = sigmoid(logit / temperature + bias)``.
        state: the network's weights.
    """

    channels: list[str]
    options: NeuralOptions
    uses_gaps: bool
    temperature: float
    bias: float
    state: dict[str, np.ndarray]
    _net: Any = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        out = self.__dict__.copy()
        out["_net"] = None  # the network's class is built inside a function; pickle keeps the weights only
        return out

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def index(self) -> dict[str, int]:
        return {c: i + 2 for i, c in enumerate(self.channels)}

    def network(self) -> Any:
        """The torch module, rebuilt from the weights the first time it is needed."""
        if self._net is None:
            torch = require("torch")
            net = _build_network(torch, len(self.channels) + 2, self.options)
            net.load_state_dict({k: torch.as_tensor(v) for k, v in self.state.items()})
            self._net = net.eval()
        return self._net

    def predict(
        self,
        paths: Paths | Sequence[Sequence[str] | str],
        gaps: Sequence[Sequence[float]] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Calibrated conversion probability of each path and each touch's share of its credit.

        Args:
            paths: a :class:`Paths`, or paths as lists of channels or text joined by ``" > "``. Channels not
                seen in training are read as one "unknown" channel.
            gaps: days from each touch to the journey's end, one list per path (ignored by a model trained
                without gaps; taken from ``paths`` when it is a :class:`Paths`).

        Returns:
            ``(probabilities, shares)``: ``shares[i]`` has one entry per touch of path ``i``, >= 0, summing
            to 1 (touches older than the last ``max_touches`` get 0).

        Raises:
            InputError: an empty path, or no gaps for a model trained on them.
        """
        torch = require("torch")
        if isinstance(paths, Paths):
            gaps = list(paths.frame["gaps"]) if paths.has_gaps else gaps
            lists = list(paths.frame["path"])
        else:
            lists = [
                [p.strip() for p in x.split(">") if p.strip()] if isinstance(x, str) else list(x)
                for x in paths
            ]
        empty = [i for i, p in enumerate(lists) if len(p) == 0]
        if empty:
            raise InputError(
                f"Cannot score {len(empty)} empty path(s) (positions {empty[:5]}).",
                hint=f"Every path names at least one channel, e.g. 'search{SEPARATOR}email'.",
            )
        if self.uses_gaps and gaps is None:
            raise InputError(
                "This model was trained on the days from each touch to the journey's end, and no gaps were "
                "given.",
                hint="Pass gaps=[[days, ...], ...] with one number per touch.",
            )
        if self.uses_gaps and gaps is not None:
            bad = [i for i, (p, g) in enumerate(zip(lists, gaps)) if len(p) != len(g)]
            if len(gaps) != len(lists) or bad:
                raise InputError(
                    f"The gaps do not match the paths ({len(gaps)} gap lists for {len(lists)} paths; "
                    f"mismatched lengths at {bad[:5]}).",
                    hint="Give one gap per touch of every path.",
                )
        encoded = _encode(lists, gaps if self.uses_gaps else None, self.index, self.options.max_touches)
        with _threads(torch, self.options.threads):
            probability, attribution = _integrated_gradients(
                torch, self.network(), encoded, self.options.ig_steps, self.temperature, self.bias
            )
        shares = _shares(attribution, encoded.lengths, encoded.full_lengths)
        return probability, shares


@dataclass(frozen=True)
class NeuralResult:
    """Credit per channel and how the model that gave it was trained.

    Attributes:
        credit: ``channel, conversions, value``; conversions sum to the paths' conversions.
        learning_curve: ``epoch, train_loss, valid_loss`` (weighted log-loss, before calibration).
        calibration: validation ``brier_before/after``, ``ece_before/after``, ``log_loss_before/after``,
            ``temperature`` and ``bias``.
        model: the fitted model, for scoring paths later.
        epochs_run: epochs trained (early stopping or the time budget may end before ``epochs``).
        best_epoch: the epoch whose weights were kept.
        seconds: wall time of the whole fit, credit included.
    """

    credit: pd.DataFrame
    learning_curve: pd.DataFrame
    calibration: dict[str, float]
    model: NeuralModel
    epochs_run: int
    best_epoch: int
    seconds: float


def fit_neural(
    paths: Paths,
    options: NeuralOptions = NeuralOptions(),  # frozen, so one shared default is safe
    progress: Callable[[int, int], None] | None = None,
) -> NeuralResult:
    """Train the sequence model on ``paths`` and attribute their conversions with integrated gradients.

    Args:
        progress: called as ``progress(epoch, options.epochs)`` after each epoch, for a progress bar.

    Raises:
        InputError: invalid options, fewer than two channels, or no non-converting journeys (a model of
            conversion needs journeys that did not convert).
    """
    started = time.perf_counter()
    _check(paths, options)
    torch = require("torch")
    frame = paths.frame
    channels = paths.channels
    index = {c: i + 2 for i, c in enumerate(channels)}
    encoded = _encode(
        list(frame["path"]), list(frame["gaps"]) if paths.has_gaps else None, index, options.max_touches
    )
    # inputs that are identical train and score once
    unique, inverse = _unique_rows(encoded)
    conversions = frame["conversions"].to_numpy(dtype=float)
    nulls = frame["nulls"].to_numpy(dtype=float)
    rng = np.random.default_rng(options.random_state)
    split = _split_counts(rng, np.concatenate([conversions, nulls]), options.validation_share)
    labels = np.concatenate([np.ones(len(frame)), np.zeros(len(frame))])
    rows = np.concatenate([inverse, inverse])
    train = _examples(rows, labels, np.concatenate([conversions, nulls]) - split)
    valid = _examples(rows, labels, split)
    if valid[2].sum() <= 0:  # too few journeys to hold any out: validate on the training examples
        valid = train

    with _threads(torch, options.threads):
        torch.manual_seed(options.random_state)
        net = _build_network(torch, len(channels) + 2, options)
        curve, best_epoch = _train(torch, net, unique, train, valid, options, rng, started, progress)
        logits = _logits(torch, net, unique.take(valid[0]))
        temperature, bias = _platt(logits, valid[1], valid[2])
        calibration = _calibration_report(logits, valid[1], valid[2], temperature, bias)
        credited = np.flatnonzero((conversions > 0) | (frame["value"].to_numpy(dtype=float) > 0))
        wanted = np.unique(inverse[credited])
        _, attribution_unique = _integrated_gradients(
            torch, net, unique.take(wanted), options.ig_steps, temperature, bias
        )
    position = np.full(len(unique.lengths), -1)
    position[wanted] = np.arange(len(wanted))
    attribution = attribution_unique[position[inverse[credited]]]
    credit = _channel_credit(paths, credited, attribution, encoded.lengths[credited])
    model = NeuralModel(
        channels=channels,
        options=options,
        uses_gaps=paths.has_gaps,
        temperature=temperature,
        bias=bias,
        state={k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()},
        _net=net.eval(),
    )
    return NeuralResult(
        credit=credit,
        learning_curve=pd.DataFrame(curve, columns=["epoch", "train_loss", "valid_loss"]),
        calibration=calibration,
        model=model,
        epochs_run=len(curve),
        best_epoch=best_epoch,
        seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------------------------------------------- checks
def _check(paths: Paths, options: NeuralOptions) -> None:
    """Every problem with the options and the paths at once, as one InputError."""
    problems = options.problems()
    channels = paths.channels
    if len(channels) < 2:
        problems.append(
            f"the paths name {len(channels)} distinct channel(s) ({channels}); attribution needs at least 2"
        )
    if not paths.frame["nulls"].sum() > 0:
        problems.append(
            f"no non-converting journeys (all {len(paths)} row(s) have nulls = 0); the model learns what "
            "makes a journey convert by comparing it with journeys that did not"
        )
    if problems:
        raise InputError(
            "Cannot fit the neural attribution model: " + "; ".join(problems) + ".",
            hint="Include journeys that did not convert (the 'nulls' column / total_null, or touchpoints of "
            "users who never converted) and at least two channels; see help(NeuralOptions) for the options.",
        )


# -------------------------------------------------------------------------------------------------- encoding
@dataclass(frozen=True)
class _Encoded:
    """Paths as padded arrays: the last ``max_touches`` touches left-aligned, padding after them."""

    codes: np.ndarray  # (n, width) int64 channel indices, PAD after the path
    recency: np.ndarray  # (n, width) float32 log1p(days or steps to the end), 0 after the path
    lengths: np.ndarray  # (n,) touches kept
    full_lengths: np.ndarray  # (n,) touches in the path

    def take(self, rows: np.ndarray) -> _Encoded:
        return _Encoded(self.codes[rows], self.recency[rows], self.lengths[rows], self.full_lengths[rows])


def _encode(
    paths: Sequence[Sequence[str]],
    gaps: Sequence[Sequence[float]] | None,
    index: dict[str, int],
    max_touches: int,
) -> _Encoded:
    """Vectorised padding: one pass over the flat touches, no Python loop per path."""
    full = np.fromiter(map(len, paths), np.int64, len(paths))
    total = int(full.sum())
    owner = np.repeat(np.arange(len(paths)), full)
    position = np.arange(total) - (np.cumsum(full) - full)[owner]
    codes_flat = np.fromiter((index.get(c, UNKNOWN) for c in chain.from_iterable(paths)), np.int64, total)
    if gaps is not None:
        recency_flat = np.log1p(
            np.clip(np.fromiter(chain.from_iterable(gaps), np.float64, total), 0, None)
        ).astype(np.float32)
    else:
        recency_flat = np.log1p(full[owner] - 1 - position).astype(np.float32)
    dropped = np.clip(full - max_touches, 0, None)
    keep = position >= dropped[owner]
    lengths = full - dropped
    width = int(lengths.max()) if len(lengths) else 1
    codes = np.full((len(paths), width), PAD, np.int64)
    recency = np.zeros((len(paths), width), np.float32)
    column = (position - dropped[owner])[keep]
    codes[owner[keep], column] = codes_flat[keep]
    recency[owner[keep], column] = recency_flat[keep]
    return _Encoded(codes, recency, lengths, full)


def _unique_rows(encoded: _Encoded) -> tuple[_Encoded, np.ndarray]:
    """Distinct inputs and, per row, which one it is (each row's bytes compared as one value)."""
    key = np.concatenate([encoded.codes.astype(np.float64), encoded.recency.astype(np.float64)], axis=1)
    key = np.ascontiguousarray(key)
    rows = key.view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return encoded.take(first), inverse.ravel()


def _split_counts(rng: np.random.Generator, counts: np.ndarray, share: float) -> np.ndarray:
    """The validation part of each count: binomial on the whole journeys, the fraction moved whole."""
    whole = np.floor(counts)
    held = rng.binomial(whole.astype(np.int64), share).astype(float)
    return held + np.where(rng.random(len(counts)) < share, counts - whole, 0.0)


def _examples(rows: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, ...]:
    """(input row, label, weight) with the same input and label merged and empty ones dropped."""
    keep = weights > 0
    key = rows[keep] * 2 + labels[keep].astype(np.int64)
    merged, where = np.unique(key, return_inverse=True)
    weight = np.bincount(where, weights=weights[keep], minlength=len(merged))
    return merged // 2, (merged % 2).astype(np.float32), weight.astype(np.float32)


# ----------------------------------------------------------------------------------------------------- model
def _build_network(torch: Any, vocabulary: int, options: NeuralOptions) -> Any:
    """Embedding + recency -> GRU -> the state after the last touch -> logit of conversion."""
    nn = torch.nn

    class PathNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(vocabulary, options.embedding_size, padding_idx=PAD)
            self.gru = nn.GRU(options.embedding_size + 1, options.hidden_size, batch_first=True)
            self.head = nn.Linear(options.hidden_size, 1)

        def embedded(self, embedded: Any, recency: Any, lengths: Any) -> Any:
            """The logit from embeddings given directly (integrated gradients scales them)."""
            out, _ = self.gru(torch.cat([embedded, recency.unsqueeze(-1)], dim=-1))
            # padding comes after a path, so the output at its last touch has not seen any
            last = out[torch.arange(out.shape[0]), lengths - 1]
            return self.head(last).squeeze(-1)

        def forward(self, codes: Any, recency: Any, lengths: Any) -> Any:
            return self.embedded(self.embedding(codes), recency, lengths)

    return PathNet()


class _threads:
    """Use ``n`` torch threads (every core when None) inside the block, then restore the old setting."""

    def __init__(self, torch: Any, n: int | None) -> None:
        self.torch, self.n, self.before = torch, n or os.cpu_count() or 1, 1

    def __enter__(self) -> None:
        self.before = self.torch.get_num_threads()
        self.torch.set_num_threads(int(self.n))

    def __exit__(self, *exc: object) -> None:
        self.torch.set_num_threads(self.before)


def _tensors(torch: Any, encoded: _Encoded, rows: np.ndarray) -> tuple[Any, Any, Any]:
    """One batch, cut to its longest path."""
    lengths = encoded.lengths[rows]
    width = int(lengths.max())
    return (
        torch.from_numpy(encoded.codes[rows, :width]),
        torch.from_numpy(encoded.recency[rows, :width]),
        torch.from_numpy(lengths),
    )


def _batches(rng: np.random.Generator, lengths: np.ndarray, batch_size: int, steps: int) -> list[np.ndarray]:
    """``steps`` batches covering the examples in random order; each group of batches is sorted by length
    first, so a batch holds paths of similar length and the GRU runs over little padding."""
    n = len(lengths)
    size = min(batch_size, n)
    order = np.concatenate([rng.permutation(n) for _ in range(math.ceil(steps * size / n))])[: steps * size]
    out: list[np.ndarray] = []
    group = size * _BUCKET_BATCHES
    for start in range(0, len(order), group):
        chunk = order[start : start + group]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        out.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
    return [out[i] for i in rng.permutation(len(out))]


def _weighted_bce(torch: Any, logits: Any, labels: Any, weights: Any) -> Any:
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    return (loss * weights).sum() / weights.sum()


def _train(
    torch: Any,
    net: Any,
    unique: _Encoded,
    train: tuple[np.ndarray, ...],
    valid: tuple[np.ndarray, ...],
    options: NeuralOptions,
    rng: np.random.Generator,
    started: float,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[tuple[int, float, float]], int]:
    """Adam with early stopping on the validation log-loss; the best epoch's weights are loaded back."""
    rows, labels, weights = train
    x = unique.take(rows)
    y, w = torch.from_numpy(labels), torch.from_numpy(weights)
    optimiser = torch.optim.Adam(net.parameters(), lr=float(options.learning_rate))
    steps = max(math.ceil(len(rows) / options.batch_size), _MIN_STEPS_PER_EPOCH)
    best, best_state, best_epoch, stale = math.inf, None, 0, 0
    curve: list[tuple[int, float, float]] = []
    out_of_time = False
    for epoch in range(1, options.epochs + 1):
        net.train()
        total, mass = 0.0, 0.0
        for batch in _batches(rng, x.lengths, options.batch_size, steps):
            loss = _weighted_bce(torch, net(*_tensors(torch, x, batch)), y[batch], w[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            batch_mass = float(w[batch].sum())
            total, mass = total + float(loss.detach()) * batch_mass, mass + batch_mass
            budget = options.time_budget_seconds
            if budget is not None and time.perf_counter() - started > budget:
                out_of_time = True
                break
        valid_loss = _log_loss(_logits(torch, net, unique.take(valid[0])), valid[1], valid[2])
        curve.append((epoch, total / max(mass, 1e-12), valid_loss))
        if progress is not None:
            progress(epoch, options.epochs)
        if valid_loss < best - _MIN_IMPROVEMENT * abs(best if math.isfinite(best) else 0.0):
            best, best_state, best_epoch, stale = valid_loss, copy.deepcopy(net.state_dict()), epoch, 0
        else:
            stale += 1
        if out_of_time or stale > options.patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return curve, best_epoch


def _logits(torch: Any, net: Any, encoded: _Encoded, batch: int = 8192) -> np.ndarray:
    """The raw logits of many inputs, in batches sorted by length."""
    out = np.empty(len(encoded.lengths), np.float64)
    order = np.argsort(encoded.lengths, kind="stable")
    net.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            out[rows] = net(*_tensors(torch, encoded, rows)).double().numpy()
    return out


# ------------------------------------------------------------------------------------------------ calibration
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _log_loss(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    # log(1 + e^-z) for positives, log(1 + e^z) for negatives, computed without overflow
    signed = np.where(labels > 0.5, -logits, logits)
    return float(np.sum(weights * np.logaddexp(0.0, signed)) / max(float(np.sum(weights)), 1e-12))


def _platt(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """``a, b`` minimising the weighted validation log-loss of ``sigmoid(a * logit + b)`` by Newton steps;
    returned as ``temperature = 1 / a`` and ``bias = b``. Identity when one class is missing."""
    w = weights.astype(np.float64)
    y = labels.astype(np.float64)
    if not (np.sum(w * y) > 0 and np.sum(w * (1 - y)) > 0):
        return 1.0, 0.0
    design = np.column_stack([logits, np.ones_like(logits)])
    beta = np.array([1.0, 0.0])
    current = _log_loss(design @ beta, y, w)
    for _ in range(50):
        p = _sigmoid(design @ beta)
        gradient = design.T @ (w * (p - y))
        hessian = (design * (w * p * (1 - p))[:, None]).T @ design + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-4:  # halve the step until the loss falls
            trial = beta - scale * step
            loss = _log_loss(design @ trial, y, w)
            if loss <= current:
                break
            scale /= 2
        else:
            break
        beta, improvement, current = trial, current - loss, loss
        if improvement < 1e-10:
            break
    a = max(float(beta[0]), 1e-3)  # a model no better than chance: keep the order of the logits anyway
    return 1.0 / a, float(beta[1])


def _expected_calibration_error(probability: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """Weighted gap between mean prediction and observed rate over ten equal-width probability bins."""
    bins = np.minimum((probability * _ECE_BINS).astype(np.int64), _ECE_BINS - 1)
    mass = np.bincount(bins, weights=weights, minlength=_ECE_BINS)
    predicted = np.bincount(bins, weights=weights * probability, minlength=_ECE_BINS)
    observed = np.bincount(bins, weights=weights * labels, minlength=_ECE_BINS)
    return float(np.sum(np.abs(predicted - observed)) / max(float(mass.sum()), 1e-12))


def _calibration_report(
    logits: np.ndarray, labels: np.ndarray, weights: np.ndarray, temperature: float, bias: float
) -> dict[str, float]:
    y, w = labels.astype(np.float64), weights.astype(np.float64)
    out: dict[str, float] = {}
    for when, z in (("before", logits), ("after", logits / temperature + bias)):
        p = _sigmoid(z)
        out[f"brier_{when}"] = float(np.sum(w * (p - y) ** 2) / max(float(w.sum()), 1e-12))
        out[f"ece_{when}"] = _expected_calibration_error(p, y, w)
        out[f"log_loss_{when}"] = _log_loss(z, y, w)
    out["temperature"], out["bias"] = float(temperature), float(bias)
    return out


# ------------------------------------------------------------------------------------------------- credit
def _integrated_gradients(
    torch: Any, net: Any, encoded: _Encoded, steps: int, temperature: float, bias: float
) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities and per-touch integrated gradients (negative ones clipped to 0).

    The path runs from every touch's embedding at 0 (the padding embedding: no channel, recency kept) to the
    real embeddings, through ``steps`` midpoints; a touch's attribution is its embedding times the mean
    gradient of the calibrated probability, summed over the embedding.
    """
    n, width = encoded.codes.shape
    attribution = np.zeros((n, width), np.float64)
    probability = np.empty(n, np.float64)
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    rows_per_batch = max(1, 16384 // steps)
    order = np.argsort(encoded.lengths, kind="stable")
    net.eval()
    for start in range(0, n, rows_per_batch):
        rows = order[start : start + rows_per_batch]
        codes, recency, lengths = _tensors(torch, encoded, rows)
        b, w = codes.shape
        with torch.no_grad():
            embedded = net.embedding(codes)  # (b, w, e)
            probability[rows] = (
                torch.sigmoid(net(codes, recency, lengths) / temperature + bias).double().numpy()
            )
        scaled = (alphas.view(steps, 1, 1, 1) * embedded.unsqueeze(0)).reshape(steps * b, w, -1)
        scaled.requires_grad_(True)
        logits = net.embedded(scaled, recency.repeat(steps, 1), lengths.repeat(steps))
        torch.sigmoid(logits / temperature + bias).sum().backward()
        mean_gradient = scaled.grad.reshape(steps, b, w, -1).mean(dim=0)
        touch = (embedded * mean_gradient).sum(dim=-1).clamp_min(0.0).double().numpy()
        attribution[rows, :w] = touch
    mask = np.arange(width)[None, :] < encoded.lengths[:, None]
    return probability, np.where(mask, attribution, 0.0)


def _shares(attribution: np.ndarray, lengths: np.ndarray, full_lengths: np.ndarray) -> list[np.ndarray]:
    """Per path, each touch's share of its credit (older touches than the kept ones first, at 0); a path
    whose attributions are all 0 is split evenly over its touches."""
    out = []
    for row, kept, full in zip(attribution, lengths, full_lengths):
        share = np.zeros(int(full))
        part = row[: int(kept)]
        total = part.sum()
        if total > 0:
            share[int(full) - int(kept) :] = part / total
        else:
            share[:] = 1.0 / full
        out.append(share)
    return out


def _channel_credit(
    paths: Paths, rows: np.ndarray, attribution: np.ndarray, kept: np.ndarray
) -> pd.DataFrame:
    """Sum each touch's share of its row's conversions (and value) by channel, without a loop per path."""
    frame = paths.frame
    channels = paths.channels
    touches = paths.touches
    totals = attribution.sum(axis=1)
    # per row of the frame, its row in ``attribution`` (-1 when it has nothing to credit)
    slot = np.full(len(frame), -1)
    slot[rows] = np.arange(len(rows))
    row_of_touch = slot[touches.owner]
    credited = row_of_touch >= 0
    owner, position, length = touches.owner[credited], touches.position[credited], touches.length[credited]
    r = row_of_touch[credited]
    dropped = length - kept[r]
    column = position - dropped
    inside = column >= 0
    raw = np.where(inside, attribution[r, np.clip(column, 0, None)], 0.0)
    share = np.where(totals[r] > 0, raw / np.where(totals[r] > 0, totals[r], 1.0), 1.0 / length)
    conversions = frame["conversions"].to_numpy(dtype=float)[owner]
    value = frame["value"].to_numpy(dtype=float)[owner]
    code = touches.channel[credited]
    return pd.DataFrame(
        {
            "channel": channels,
            "conversions": np.bincount(code, weights=share * conversions, minlength=len(channels)),
            "value": np.bincount(code, weights=share * value, minlength=len(channels)),
        }
    )
