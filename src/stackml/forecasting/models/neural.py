"""A global N-HiTS-style forecaster in PyTorch that trains on CPU in minutes.

N-HiTS (Challu et al., 2023) stacks MLP blocks; each block reads the input window after max-pooling it (coarse
blocks see a smoothed, shorter window), predicts a backcast that is subtracted from the input of the next
block and a few forecast coefficients that are linearly interpolated to the horizon (coarse blocks emit few
coefficients, so they model the slow part of the forecast and the fine blocks the rest). The forecast is the
sum over blocks.

Training samples random windows from every series: series uniformly, then a cut-off inside the series; the
input window is the ``input_size`` values before the cut-off (zero-padded and masked where a series is
shorter), the target the ``h`` values after it. Each window is divided by the mean absolute value of its
observed inputs, so series of any level share one model; the loss is the mean absolute error on that scale
(``loss="mase"`` re-weights it to units of each series' seasonal-naive error). The last ``h`` values of every
series are held out to pick the best step (early stopping), and the model forecasts from the full series.

Example:
    >>> import numpy as np
    >>> from stackml.forecasting.panel import Panel
    >>> t = np.arange(200)
    >>> panel = Panel.from_arrays([10 + np.sin(2 * np.pi * t / 12) * k for k in (1, 2, 3)], season_length=12)
    >>> NHITSForecaster(max_steps=50).fit(panel).predict(12).shape  # doctest: +SKIP
    (3, 12)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stackml._deps import require
from stackml.errors import InputError
from stackml.forecasting.features import LocalScaler, start_steps
from stackml.forecasting.models.base import ForecastModel
from stackml.forecasting.panel import Panel

__all__ = ["NHITSForecaster"]


class NHITSForecaster(ForecastModel):
    """Global N-HiTS-style MLP forecaster (multi-rate pooling, interpolated forecasts), trained with Adam.

    The network is trained for one horizon, fixed at fit time: ``horizon``, else ``panel.extra["horizon"]``
    (where the front door puts the ``h`` it will ask for), else ``max(2 * season_length, 8)``. ``predict``
    with a longer ``h`` rolls the network forward on its own forecasts; a shorter one keeps the first ``h``
    steps.

    Args:
        horizon: forecast length the network is trained for (``None``: see above).
        input_size: input window length; ``None`` takes ``max(2 * horizon, 7 * season_length)`` capped at 512
            (it covers a week of hourly data), shortened to what the longest series can supply.
        pool_sizes: max-pool kernel per stack (one block per stack); coarse first.
        downsample: forecast coefficients per stack are ``ceil(horizon / downsample)``; coarse first.
        hidden_size: width of the hidden layers.
        n_layers: hidden layers per block.
        n_models: networks trained with seeds ``random_state, random_state + 1, ...``, forecasts averaged (as
            N-BEATS ensembles do; on M4 Hourly three networks scored OWA 0.469 where one scored 0.496).
        max_steps: training steps (batches) per network.
        batch_size: windows per batch.
        learning_rate: Adam step size (halved at 50% and 75% of ``max_steps``).
        loss: ``"mae"``: absolute error relative to each window's level (a percentage-like error); ``"mase"``:
            absolute error in units of the series' in-sample seasonal-naive error, the scale MASE uses.
        season_position: feed the phase in the season of the first forecast step (sine and cosine of
            ``t mod m``; ``t`` from integer ``ds`` when the panel has it, else counted from each series'
            start).
        early_stopping: hold out the last ``horizon`` values of each series and keep the weights of the best
            validation step.
        val_check_steps: steps between validation checks.
        patience: validation checks without improvement before stopping (``None``: never stop early).
        n_threads: torch CPU threads while fitting and predicting (``None``: leave torch's setting). One
            thread is the default because this network is small: on a 2-core machine, 2 threads made each step
            5-15 times slower (thread synchronisation outweighs the tiny matrix products, worse when other
            work shares the cores); raise it for wide networks on many cores.
        random_state: seed of weights and window sampling.
        alias: output column name.
    """

    default_alias = "NHITS"
    requires = ("torch",)
    is_global = True

    def __init__(
        self,
        *,
        horizon: int | None = None,
        input_size: int | None = None,
        pool_sizes: Sequence[int] = (8, 4, 1),
        downsample: Sequence[int] = (12, 4, 1),
        hidden_size: int = 256,
        n_layers: int = 2,
        n_models: int = 3,
        max_steps: int = 3000,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        loss: str = "mae",
        season_position: bool = False,
        early_stopping: bool = True,
        val_check_steps: int = 250,
        patience: int | None = 4,
        n_threads: int | None = 1,
        random_state: int | None = 0,
        alias: str | None = None,
    ) -> None:
        super().__init__(alias=alias)
        self.horizon = horizon
        self.input_size = input_size
        self.pool_sizes = pool_sizes
        self.downsample = downsample
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.n_models = n_models
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.loss = loss
        self.season_position = season_position
        self.early_stopping = early_stopping
        self.val_check_steps = val_check_steps
        self.patience = patience
        self.n_threads = n_threads
        self.random_state = random_state

    # ------------------------------------------------------------------------------------------------- checks
    def _check_params(self) -> None:
        problems = []
        for name in ("n_models", "max_steps", "batch_size", "hidden_size", "n_layers", "val_check_steps"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        for name in ("horizon", "input_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
                problems.append(f"{name} must be a positive integer or None, got {value!r}")
        if len(self.pool_sizes) != len(self.downsample) or not len(self.pool_sizes):
            problems.append(
                f"pool_sizes and downsample need one entry per stack, got {list(self.pool_sizes)} and "
                f"{list(self.downsample)}"
            )
        if any(int(v) < 1 for v in [*self.pool_sizes, *self.downsample]):
            problems.append("pool_sizes and downsample must be positive integers")
        if self.loss not in ("mae", "mase"):
            problems.append(f"loss must be 'mae' or 'mase', got {self.loss!r}")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            problems.append(f"learning_rate must be a positive number, got {self.learning_rate!r}")
        if problems:
            raise InputError(
                "NHITSForecaster: " + "; ".join(problems) + ".",
                hint="See help(stackml.forecasting.models.neural.NHITSForecaster) for the valid values.",
            )

    def probe(self) -> list[tuple[ForecastModel, float]]:
        # training cost grows with the steps on top of a fixed cost; early stopping can only make the real
        # fit cheaper
        full = int(self.max_steps)
        steps = sorted({min(full, 10), min(full, 30)})
        return [
            (type(self)(**{**self.get_params(), "max_steps": s, "early_stopping": False}), s / full)
            for s in steps
        ]

    # -------------------------------------------------------------------------------------------------- fit
    def _fit(self, panel: Panel) -> None:
        self._check_params()
        torch = require("torch")
        y = np.asarray(panel.y, dtype=np.float64)
        if not np.isfinite(y).all():
            raise InputError(
                f"{self.name}: the target holds {int((~np.isfinite(y)).sum())} missing or infinite values.",
                hint="Fill or drop them first.",
            )
        m = max(int(panel.season_length), 1)
        lengths = panel.lengths
        h = self.horizon or panel.extra.get("horizon") or max(2 * m, 8)
        h = int(h)
        size = int(self.input_size) if self.input_size is not None else min(max(2 * h, 7 * m), 512)
        size = max(1, min(size, int(lengths.max()) - 1)) if lengths.max() > 1 else 1
        self.horizon_, self.input_size_ = h, size
        self.season_length_ = m
        self.n_phase_ = 2 if self.season_position and m > 1 else 0
        self.start_ = start_steps(panel)
        # the in-sample seasonal-naive error of each series: a "mase" loss counts errors in these units
        scaler = LocalScaler("mase", season_length=m)
        scaler.fit_transform(y, panel.indptr)

        # hold out the last h values of series long enough to lose them; the rest trains
        val_ok = lengths >= h + 2 if self.early_stopping else np.zeros(len(lengths), dtype=bool)
        train_end = lengths - np.where(val_ok, h, 0)
        # a training cut-off c needs at least one input value and a full target: 1 <= c <= train_end - h
        n_cuts = train_end - h
        if n_cuts.max() < 1:
            raise InputError(
                f"{self.name}: no series is long enough to train on (longest {int(lengths.max())} values; "
                f"the model needs more than horizon={h} plus one input value, and early stopping holds out "
                f"another {h}).",
                hint="Pass a shorter horizon=..., early_stopping=False, or use a local model "
                "for such short series.",
            )
        trainable = np.flatnonzero(n_cuts >= 1)
        self.use_mask_ = bool((train_end[trainable] - h < size).any() or (lengths < size).any())
        data = _TrainingData(
            y, np.asarray(panel.indptr), scaler.scale_, n_cuts, trainable, np.flatnonzero(val_ok)
        )

        threads = torch.get_num_threads()
        if self.n_threads is not None:
            torch.set_num_threads(int(self.n_threads))
        try:
            self.nets_, self.best_steps_, self.val_losses_ = [], [], []
            for k in range(int(self.n_models)):
                seed = None if self.random_state is None else int(self.random_state) + k
                net, best_step, val_loss = self._train_one(torch, data, seed)
                self.nets_.append(net)
                self.best_steps_.append(best_step)
                self.val_losses_.append(val_loss)
        finally:
            torch.set_num_threads(threads)
        self.y_ = y
        self.indptr_ = np.asarray(panel.indptr)

    def _train_one(self, torch: Any, data: _TrainingData, seed: int | None) -> tuple[Any, int, float | None]:
        """Train one network; returns it (best validation weights loaded),
        its best step and validation loss."""
        size, h = self.input_size_, self.horizon_
        rng = np.random.default_rng(seed)
        if seed is not None:
            torch.manual_seed(seed)
        net = _build_network(torch, size, h, self.use_mask_, self.n_phase_, self)
        opt = torch.optim.Adam(net.parameters(), lr=float(self.learning_rate))
        milestones = [int(self.max_steps * 0.5), int(self.max_steps * 0.75)]
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.5)
        lengths = np.diff(data.indptr)

        def batch(series: np.ndarray, cuts: np.ndarray) -> tuple[Any, Any, Any]:
            x, mask, scale = _windows(data.y, data.indptr, series, cuts, size, h)
            inp = torch.as_tensor(self._inputs(x, mask, scale, series, cuts), dtype=torch.float32)
            target = torch.as_tensor(x[:, size:] / scale[:, None], dtype=torch.float32)
            weight = torch.as_tensor(self._weights(scale, data.series_scale[series]), dtype=torch.float32)
            return inp, target, weight

        if len(data.val_idx):
            vin, vtarget, vweight = batch(data.val_idx, lengths[data.val_idx] - h)
        best, best_state, bad_checks, best_step = math.inf, None, 0, int(self.max_steps)
        net.train()
        for step in range(1, int(self.max_steps) + 1):
            series = data.trainable[rng.integers(0, len(data.trainable), int(self.batch_size))]
            cuts = 1 + np.floor(rng.random(len(series)) * data.n_cuts[series]).astype(np.int64)
            inp, target, weight = batch(series, cuts)
            loss = ((net(inp) - target).abs().mean(dim=1) * weight).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if len(data.val_idx) and (step % int(self.val_check_steps) == 0 or step == int(self.max_steps)):
                net.eval()
                with torch.no_grad():
                    val = float(((net(vin) - vtarget).abs().mean(dim=1) * vweight).mean())
                net.train()
                if val < best - 1e-6:
                    best, best_state, bad_checks, best_step = val, copy.deepcopy(net.state_dict()), 0, step
                else:
                    bad_checks += 1
                    if self.patience is not None and bad_checks > int(self.patience):
                        break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        return net, best_step, (best if best_state is not None else None)

    # the networks are instances of classes built inside a function (torch is imported lazily), which pickle
    # cannot name; a fitted model pickles its weights instead and rebuilds the networks when loaded
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if "nets_" in state:
            state["nets_"] = [net.state_dict() for net in state["nets_"]]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "nets_" in state:
            torch = require("torch")
            nets = []
            for weights in state["nets_"]:
                net = _build_network(
                    torch, self.input_size_, self.horizon_, self.use_mask_, self.n_phase_, self
                )
                net.load_state_dict(weights)
                nets.append(net.eval())
            self.nets_ = nets

    def _weights(self, window_scale: np.ndarray, series_scale: np.ndarray) -> np.ndarray:
        # errors are measured on the window scale; re-weighting by window / series scale turns them into
        # MASE units
        if self.loss == "mase":
            return window_scale / series_scale
        return np.ones_like(window_scale)

    def _inputs(
        self, x: np.ndarray, mask: np.ndarray, scale: np.ndarray, series: np.ndarray, cuts: np.ndarray
    ) -> np.ndarray:
        """Network input: the scaled window, then its mask (if any series is short), then the season phase."""
        size = self.input_size_
        parts = [x[:, :size] / scale[:, None]]
        if self.use_mask_:
            parts.append(mask)
        if self.n_phase_:
            # phase of the first forecast step on the unit circle, so the last and first hour of a
            # day are close
            angle = 2 * np.pi * ((self.start_[series] + cuts) % self.season_length_) / self.season_length_
            parts += [np.sin(angle)[:, None], np.cos(angle)[:, None]]
        return np.hstack(parts)

    # ------------------------------------------------------------------------------------------------ predict
    def _predict(self, h: int, X_future: np.ndarray | None) -> np.ndarray:
        torch = require("torch")
        size, trained_h = self.input_size_, self.horizon_
        threads = torch.get_num_threads()
        if self.n_threads is not None:
            torch.set_num_threads(int(self.n_threads))
        try:
            n = self.n_series_
            # roll forward on the network's own forecasts when asked for more than it was trained for
            y, indptr = self.y_, self.indptr_
            chunks: list[np.ndarray] = []
            done = 0
            while done < h:
                cuts = np.diff(indptr)
                x, mask, scale = _windows(y, indptr, np.arange(n), cuts, size, 0)
                with torch.no_grad():
                    inp = torch.as_tensor(
                        self._inputs(x, mask, scale, np.arange(n), cuts), dtype=torch.float32
                    )
                    # the members' forecasts are averaged: seeds differ in weights and in the windows they saw
                    out = np.mean([net(inp).double().numpy() for net in self.nets_], axis=0) * scale[:, None]
                chunks.append(out)
                done += trained_h
                if done < h:
                    y, indptr = _append(y, indptr, out)
            return np.hstack(chunks)[:, :h]
        finally:
            torch.set_num_threads(threads)


@dataclass(frozen=True)
class _TrainingData:
    """What every member network trains on: the packed series and where windows may be cut."""

    y: np.ndarray
    indptr: np.ndarray
    series_scale: np.ndarray  # in-sample seasonal-naive error per series
    n_cuts: np.ndarray  # per series, how many training cut-offs it has (1..n_cuts)
    trainable: np.ndarray  # series with at least one cut-off
    val_idx: np.ndarray  # series with a held-out validation window


def _windows(
    y: np.ndarray, indptr: np.ndarray, series: np.ndarray, cuts: np.ndarray, size: int, h: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gather input+target windows around cut-offs, vectorised over the batch.

    Returns ``x`` of shape ``(batch, size + h)`` (inputs then targets, zero where a window reaches before the
    series start), the input mask ``(batch, size)`` (1 = observed) and the per-window scale (mean absolute
    observed input).
    """
    offsets = np.arange(-size, h)
    rel = cuts[:, None] + offsets[None, :]  # position inside the series
    observed = rel >= 0
    idx = np.asarray(indptr)[series][:, None] + np.where(observed, rel, 0)
    x = np.where(observed, y[idx], 0.0)
    mask = observed[:, :size].astype(np.float64)
    count = np.maximum(mask.sum(axis=1), 1.0)
    scale = np.abs(x[:, :size]).sum(axis=1) / count
    # a window of zeros keeps scale 1 so it neither explodes nor vanishes
    scale = np.where(scale > 1e-8, scale, 1.0)
    return x, mask, scale


def _append(y: np.ndarray, indptr: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Append ``new[i]`` to the end of series ``i`` of a packed array."""
    lengths = np.diff(indptr)
    k = new.shape[1]
    out_len = lengths + k
    out_ptr = np.concatenate([[0], np.cumsum(out_len)])
    out = np.empty(out_ptr[-1])
    old_pos = np.repeat(out_ptr[:-1], lengths) + (np.arange(len(y)) - np.repeat(indptr[:-1], lengths))
    out[old_pos] = y
    new_pos = (out_ptr[:-1] + lengths)[:, None] + np.arange(k)[None, :]
    out[new_pos.ravel()] = new.ravel()
    return out, out_ptr


def _build_network(torch: Any, size: int, h: int, use_mask: bool, n_phase: int, cfg: NHITSForecaster) -> Any:
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, pool: int, n_coef: int) -> None:
            super().__init__()
            self.pool = nn.MaxPool1d(kernel_size=pool, stride=pool, ceil_mode=True) if pool > 1 else None
            pooled = math.ceil(size / pool)
            width = pooled + (size if use_mask else 0) + n_phase
            layers: list[Any] = []
            for _ in range(int(cfg.n_layers)):
                layers += [nn.Linear(width, int(cfg.hidden_size)), nn.ReLU()]
                width = int(cfg.hidden_size)
            self.mlp = nn.Sequential(*layers)
            self.backcast = nn.Linear(width, size)
            self.forecast = nn.Linear(width, n_coef)
            self.n_coef = n_coef

        def forward(self, x: Any, side: Any | None) -> tuple[Any, Any]:
            z = self.pool(x.unsqueeze(1)).squeeze(1) if self.pool is not None else x
            if side is not None:
                z = torch.cat([z, side], dim=1)
            hidden = self.mlp(z)
            coef = self.forecast(hidden)
            if self.n_coef == h:
                fc = coef
            else:  # interpolate the few coefficients of a coarse block to the whole horizon
                fc = nn.functional.interpolate(coef.unsqueeze(1), size=h, mode="linear", align_corners=True)
                fc = fc.squeeze(1)
            return self.backcast(hidden), fc

    class Network(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            blocks = [
                Block(int(p), max(1, math.ceil(h / int(d))))
                for p, d in zip(cfg.pool_sizes, cfg.downsample, strict=True)
            ]
            self.blocks = nn.ModuleList(blocks)

        def forward(self, inp: Any) -> Any:
            x = inp[:, :size]
            mask = inp[:, size : 2 * size] if use_mask else None
            # the mask and the phase go to every block as they are
            side = inp[:, size:] if inp.shape[1] > size else None
            forecast = 0.0
            for block in self.blocks:
                back, fc = block(x, side)
                x = x - back if mask is None else (x - back) * mask
                forecast = forecast + fc
            return forecast

    return Network()
