"""Fast CPU inference of a fine-tuned MiniLM: ONNX Runtime, with int8 weights for serving.

Serving a fine-tuned transformer through torch spends most of a single-text call in Python dispatch and
autograd bookkeeping rather than in arithmetic. Exported to ONNX, the same graph runs in ONNX Runtime's C++
kernels with fused attention and layer norms; with its weights quantised to int8 (dynamic quantisation: the
weights are stored as int8, activations quantised on the fly) the file shrinks about four times and the matrix
products use the CPU's integer instructions, at the cost of a little precision. Both matter for a CPU-only
serving box: latency per request, and the size of the artifact stored in the model registry.

Example:
    >>> clf = TextClassifier("minilm").fit(texts, labels)  # doctest: +SKIP
    >>> export_onnx(clf.model_, "exports/minilm")  # doctest: +SKIP
    >>> fast = OnnxTextModel("exports/minilm", "int8")  # doctest: +SKIP
    >>> clf.classes_[fast.predict_proba(["my card has not arrived"]).argmax(axis=1)]  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stackml._deps import require
from stackml.embeddings import minilm as encoder
from stackml.errors import InputError

__all__ = ["FILES", "OnnxTextModel", "export_onnx", "latency"]

FILES = {"fp32": "model_fp32.onnx", "int8": "model_int8.onnx"}  # variant -> file in the export directory
TOKENIZER_DIR = "tokenizer"
META_FILE = "export.json"  # max_length and n_classes, so the directory alone rebuilds the model
OPSET = 17  # the first opset with a LayerNormalization op, which ONNX Runtime fuses
OUTPUT = "logits"
DEFAULT_BATCH_SIZE = 64


# --- export ------------------------------------------------------------------------------------------------


def export_onnx(model: Any, directory: str | os.PathLike, *, quantize: bool = True) -> dict[str, Path]:
    """Export a fine-tuned ``MiniLMModel`` (or a ``TextClassifier("minilm")`` holding one) to ONNX.

    Writes ``model_fp32.onnx`` (dynamic batch and sequence axes; inputs ``input_ids``, ``attention_mask``
    and ``token_type_ids`` where the model takes them; output ``logits``), ``model_int8.onnx`` when
    ``quantize`` (dynamic int8 quantisation of the weights), the tokenizer (``tokenizer/``) and
    ``export.json``, so the directory alone is enough to serve from. Everything is written into a staging
    folder first and moved into place only once all of it succeeded: a failed export leaves no half-written
    file, and an earlier export in the same directory stays whole.

    Returns:
        The paths written: ``{"fp32", "int8" (when quantize), "tokenizer", "meta"}``.
    """
    fitted = _fitted_minilm(model)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=directory))
    try:
        names = _export_fp32(fitted, staging / FILES["fp32"])
        if quantize:
            _quantize(staging / FILES["fp32"], staging / FILES["int8"])
        fitted._tokenizer_.save_pretrained(staging / TOKENIZER_DIR)
        meta = {"max_length": int(fitted.max_length), "n_classes": int(fitted._n_classes), "inputs": names}
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return _publish(staging, directory, quantize)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fitted_minilm(model: Any) -> Any:
    """The fitted ``MiniLMModel`` itself, also when handed the ``TextClassifier`` around it."""
    inner = getattr(model, "model_", model)  # a fitted TextClassifier keeps its model kind in model_
    if not all(hasattr(inner, a) for a in ("_model_", "_tokenizer_", "_n_classes", "max_length")):
        raise InputError(
            f"export_onnx needs a fine-tuned MiniLM model; got {type(model).__name__} without the fitted "
            "transformer and tokenizer.",
            hint="Fit TextClassifier('minilm') first and pass it (or its .model_) to export_onnx.",
        )
    return inner


def _input_names(net: Any, tokenizer: Any) -> list[str]:
    """The graph's inputs: token type ids only where both the model and the tokenizer use them."""
    names = ["input_ids", "attention_mask"]
    takes = inspect.signature(net.forward).parameters
    if "token_type_ids" in takes and "token_type_ids" in getattr(tokenizer, "model_input_names", ()):
        names.append("token_type_ids")
    return names


def _logits_only(torch: Any, net: Any, names: list[str]) -> Any:
    """A module taking the inputs positionally, in ``names`` order, and returning the logits tensor.

    Passing a dict of kwargs to the exporter instead names the graph's inputs in the order of the model's
    own signature, not the dict's, which silently swaps ``attention_mask`` and ``token_type_ids``.
    """

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, *inputs: Any) -> Any:
            return self.net(**dict(zip(names, inputs))).logits

    # The exporter runs the module in eval mode and afterwards restores the mode it found; a new module is in
    # train mode, so without this the fine-tuned model would be left with dropout switched on.
    return LogitsOnly().eval()


def _export_fp32(fitted: Any, path: Path) -> list[str]:
    torch = require("torch", extra="nlp")
    net, tokenizer = fitted._model_, fitted._tokenizer_
    names = _input_names(net, tokenizer)
    # Two texts of different lengths: a padded batch, so the attention-mask path is the one traced, and a
    # batch dimension above 1, so nothing is specialised to a single row.
    example = encoder.encode(tokenizer, ["a short text", "a longer text, padded to this length"], 32)
    axes = {name: {0: "batch", 1: "sequence"} for name in names} | {OUTPUT: {0: "batch"}}
    was_training = net.training
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter warns that it is deprecated, and the tracer warns where transformers
            # turns a shape into a Python bool (mask padding, SDPA's is_causal); for an encoder those are the
            # same for every batch and sequence length, so the traced graph holds for all of them.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _logits_only(torch, net, names),
                tuple(example[name] for name in names),
                str(path),
                input_names=names,
                output_names=[OUTPUT],
                dynamic_axes=axes,
                opset_version=OPSET,
                do_constant_folding=True,
                # dynamo=False: torch >= 2.9 defaults to the torch.export-based exporter, which needs the
                # onnxscript package (not a dependency of stackml, and not installable offline). The
                # TorchScript exporter needs nothing beyond torch and onnx, and handles BERT-style encoders.
                dynamo=False,
            )
    finally:
        net.train(was_training)
    return names


def _quantize(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation: weights stored as signed int8, activations quantised per call."""
    quantization = require("onnxruntime.quantization", extra="nlp")
    hint = _DropLogLine("pre-processing before quantization")
    # quantize_dynamic logs, on the root logger, a hint to run its shape-inference pre-processing first. That
    # matters for static quantisation; here the int8 file is 4x smaller and keeps the fp32 argmax on our test
    # texts without it, so the hint would only be noise on every export.
    logging.getLogger().addFilter(hint)
    try:
        quantization.quantize_dynamic(source, target, weight_type=quantization.QuantType.QInt8)
    finally:
        logging.getLogger().removeFilter(hint)


class _DropLogLine(logging.Filter):
    """Drops log records that contain ``fragment``; lets every other record through."""

    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


def _publish(staging: Path, directory: Path, quantize: bool) -> dict[str, Path]:
    """Move the staged export into ``directory``: files by atomic rename, the tokenizer folder by swap."""
    paths = {"fp32": directory / FILES["fp32"], "tokenizer": directory / TOKENIZER_DIR}
    if quantize:
        paths["int8"] = directory / FILES["int8"]
    else:  # an int8 file from an earlier export would no longer match the new fp32 weights
        (directory / FILES["int8"]).unlink(missing_ok=True)
    for key in ("fp32", "int8"):
        if key in paths:
            os.replace(staging / paths[key].name, paths[key])
    old = staging / "old-tokenizer"
    if paths["tokenizer"].exists():
        os.replace(paths["tokenizer"], old)  # a folder cannot be replaced in one rename; swap it out first
    os.replace(staging / TOKENIZER_DIR, paths["tokenizer"])
    paths["meta"] = directory / META_FILE
    os.replace(staging / META_FILE, paths["meta"])  # last: its presence marks a complete export
    return paths


# --- inference ---------------------------------------------------------------------------------------------


class OnnxTextModel:
    """A fine-tuned MiniLM served by ONNX Runtime on the CPU, from a directory written by :func:`export_onnx`.

    The model's bytes and the tokenizer are read once, at construction, and travel with the object when it
    is pickled (the ONNX Runtime session does not pickle; it is rebuilt on first use), so a pickled model
    does not depend on the export directory still existing.

    Args:
        directory: a directory written by :func:`export_onnx`.
        variant: ``"int8"`` (smaller and faster, a little less exact) or ``"fp32"``.
        max_length: tokens per text; longer texts are cut. Defaults to the window the model was trained with.
        n_classes: the number of classes, checked against the export when given.
        batch_size: texts per call into ONNX Runtime, grouped by similar length.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        variant: str = "int8",
        *,
        max_length: int | None = None,
        n_classes: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        directory = Path(directory)
        meta = _check_export(directory, variant)
        if n_classes is not None and n_classes != meta["n_classes"]:
            raise InputError(
                f"n_classes={n_classes} was asked for, but the model in {directory} has {meta['n_classes']}.",
                hint="Leave n_classes out to take it from the export, or point at the right directory.",
            )
        self.directory, self.variant, self.batch_size = str(directory), variant, batch_size
        self.max_length = int(max_length or meta["max_length"])
        self.n_classes = int(meta["n_classes"])
        self._model_bytes = (directory / FILES[variant]).read_bytes()
        transformers = encoder.quiet_transformers()
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(directory / TOKENIZER_DIR)
        self._session: Any = None

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities ``(n_texts, n_classes)`` (softmax of the logits); each row sums to one.

        ``texts`` are clean strings, as a model kind receives them (``TextClassifier`` and the registered
        model clean raw input before it gets here).
        """
        if isinstance(texts, str):  # list() would split it into characters
            raise InputError(
                f"predict_proba takes a list of texts; got a single str ({texts[:40]!r}).",
                hint="Wrap a single text in a list: [text].",
            )
        texts = list(texts)
        out = np.zeros((len(texts), self.n_classes))
        if not texts:
            return out
        session = self._get_session()
        wanted = [i.name for i in session.get_inputs()]
        lengths = encoder.token_lengths(self._tokenizer, texts)
        for rows in encoder.length_batches(lengths, self.batch_size):
            batch = encoder.encode(self._tokenizer, [texts[i] for i in rows], self.max_length)
            feed = {name: batch[name].numpy() for name in wanted}
            out[rows] = _softmax(session.run([OUTPUT], feed)[0])
        return out

    def _get_session(self) -> Any:
        if self._session is None:
            self._session = _make_session(self._model_bytes)
        return self._session

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"] = None  # an InferenceSession cannot be pickled; it is rebuilt on first use
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"OnnxTextModel({self.directory!r}, {self.variant!r}, max_length={self.max_length})"


def _check_export(directory: Path, variant: str) -> dict[str, Any]:
    """The export's metadata, after checking that the variant is known and its files are all there."""
    if variant not in FILES:
        raise InputError(
            f"Unknown ONNX variant {variant!r}; the variants are {sorted(FILES)}.",
            hint="Use 'int8' for the quantised model or 'fp32' for the exact one.",
        )
    needed = [FILES[variant], TOKENIZER_DIR, META_FILE]
    missing = [name for name in needed if not (directory / name).exists()]
    if missing:
        found = sorted(p.name for p in directory.iterdir())[:10] if directory.is_dir() else None
        seen = f"it holds {found}" if found is not None else "it is not a directory"
        only_fp32 = variant == "int8" and (directory / FILES["fp32"]).exists()
        extra = " (it was exported with quantize=False)" if only_fp32 else ""
        raise InputError(
            f"{directory} is not a complete ONNX export for variant {variant!r}: missing {missing}; "
            f"{seen}{extra}.",
            hint="Write the directory with stackml.nlp.fast.export_onnx(model, directory) (quantize=True for "
            "the int8 variant), and pass that directory.",
        )
    return json.loads((directory / META_FILE).read_text())


def _make_session(model_bytes: bytes) -> Any:
    ort = require("onnxruntime", extra="nlp")
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(os.cpu_count() or 1, 1)  # ORT may default to fewer in a container
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # fuses attention, GELU
    return ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)  # no overflow on large logits
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


# --- latency -----------------------------------------------------------------------------------------------


def latency(
    predict_proba: Callable[[list[str]], Any], texts: Sequence[str], *, repeats: int = 200, warmup: int = 10
) -> dict[str, float]:
    """Single-text latency of ``predict_proba`` (one text per call, cycling through ``texts``) and its
    throughput on one batched call over all of ``texts``.

    The first calls pay for lazy set-up (sessions, thread pools, allocator growth), so ``warmup`` calls are
    made and not counted. p99 is what a serving SLO is written against; p50 alone hides the tail.

    Returns:
        ``{"p50_ms", "p99_ms", "texts_per_s"}``.
    """
    texts = list(texts)
    if not texts or repeats < 1 or warmup < 0:
        raise InputError(
            f"latency needs at least one text, repeats >= 1 and warmup >= 0; got {len(texts)} text(s), "
            f"repeats={repeats}, warmup={warmup}.",
            hint="Pass a few representative texts, e.g. latency(model.predict_proba, test_texts).",
        )
    for i in range(warmup):
        predict_proba([texts[i % len(texts)]])
    seconds = np.empty(repeats)
    for i in range(repeats):
        started = time.perf_counter()
        predict_proba([texts[i % len(texts)]])
        seconds[i] = time.perf_counter() - started
    started = time.perf_counter()
    predict_proba(texts)
    batched = time.perf_counter() - started
    return {
        "p50_ms": float(np.percentile(seconds, 50) * 1e3),
        "p99_ms": float(np.percentile(seconds, 99) * 1e3),
        "texts_per_s": float(len(texts) / max(batched, 1e-12)),
    }
