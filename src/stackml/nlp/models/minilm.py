"""Fine-tuning all-MiniLM-L6-v2 with a classification head, on CPUs.

The encoder (22M parameters) and a new linear head on its [CLS] representation are trained together with
AdamW, a linear warm-up then decay of the learning rate, class-weighted cross-entropy and gradient clipping.
Batches are texts of similar length, padded to their own longest text. After each epoch the validation split
is scored; the best epoch's weights are kept, and training stops after ``patience`` epochs without a better
validation accuracy, or when ``max_minutes`` run out (the epoch in flight stops at its next batch).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from stackml._deps import require
from stackml.embeddings import minilm as encoder
from stackml.nlp.models.base import Fitted, TextModel, class_weights

__all__ = ["MiniLMModel"]


class MiniLMModel(TextModel):
    """all-MiniLM-L6-v2 fine-tuned end to end.

    Args:
        epochs: most passes over the training texts.
        batch_size: texts per optimisation step.
        learning_rate: peak learning rate of AdamW (a small model with a new head wants more than BERT's
            usual 2e-5).
        weight_decay: AdamW's decoupled weight decay (not on biases and layer norms).
        warmup: share of the steps over which the learning rate rises to its peak.
        patience: epochs without a better validation accuracy before stopping.
        max_length: tokens per text; longer texts are cut (and counted).
        max_minutes: wall-clock budget of the fit (None: no limit).
        seed: seeds the head's initialisation, dropout and the batch order.
    """

    kind = "minilm"

    def __init__(
        self,
        epochs: int = 10,
        batch_size: int = 32,
        learning_rate: float = 1e-4,
        weight_decay: float = 0.01,
        warmup: float = 0.06,
        patience: int = 2,
        max_length: int = encoder.DEFAULT_MAX_LENGTH,
        max_minutes: float | None = None,
        seed: int = 0,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.patience = patience
        self.max_length = max_length
        self.max_minutes = max_minutes
        self.seed = seed

    def fit(self, texts, codes, n_classes, *, validation=None, progress=None) -> Fitted:
        torch = require("torch", extra="nlp")
        transformers = encoder.quiet_transformers()
        encoder.use_all_threads()
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        started = time.perf_counter()
        deadline = None if self.max_minutes is None else started + 60.0 * self.max_minutes
        tokenizer = encoder.load_tokenizer()
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            encoder.model_path(), num_labels=n_classes
        )
        lengths = encoder.token_lengths(tokenizer, texts)
        weights = torch.tensor(class_weights(codes, n_classes), dtype=torch.float32)
        loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
        optimizer, scheduler = self._optimiser(torch, model, math.ceil(len(texts) / self.batch_size))
        targets = torch.as_tensor(np.asarray(codes, dtype=np.int64))
        history: list[dict[str, float]] = []
        best_score, best_state, stale = -math.inf, None, 0
        self._tokenizer_, self._n_classes = tokenizer, n_classes
        for epoch in range(1, self.epochs + 1):
            model.train()
            total, seen, out_of_time = 0.0, 0, False
            for rows in encoder.length_batches(lengths, self.batch_size, rng):
                batch = encoder.encode(tokenizer, [texts[i] for i in rows], self.max_length)
                loss = loss_fn(model(**batch).logits, targets[rows])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                total, seen = total + loss.item() * len(rows), seen + len(rows)
                if deadline is not None and time.perf_counter() > deadline:
                    out_of_time = True
                    break
            row = {"epoch": float(epoch), "train_loss": total / max(seen, 1)}
            if validation is not None:
                self._model_ = model
                proba = self.predict_proba(validation[0])
                picked = proba[np.arange(len(validation[1])), validation[1]]
                row["val_loss"] = float(-np.log(np.clip(picked, 1e-12, None)).mean())
                row["val_accuracy"] = float((proba.argmax(1) == validation[1]).mean())
            row["seconds"] = time.perf_counter() - started
            history.append(row)
            if progress is not None:
                progress(epoch, row)
            score = row.get("val_accuracy", -row["train_loss"])
            if score > best_score:
                best_score, stale = score, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
            if out_of_time or stale >= self.patience:
                break
        if best_state is not None:
            model.load_state_dict(best_state)
        self._model_ = model.eval()
        truncated = int((lengths > self.max_length).sum())
        return Fitted(history=history, truncated=truncated, seconds=time.perf_counter() - started)

    def _optimiser(self, torch: Any, model: Any, steps_per_epoch: int) -> tuple[Any, Any]:
        no_decay = ("bias", "LayerNorm.weight", "layernorm", "norm.weight")
        decay = [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)]
        rest = [p for n, p in model.named_parameters() if any(k in n for k in no_decay)]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.weight_decay}, {"params": rest, "weight_decay": 0.0}],
            lr=self.learning_rate,
        )
        total = max(steps_per_epoch * self.epochs, 1)
        warm = max(int(self.warmup * total), 1)

        def rate(step: int) -> float:  # linear warm-up, then linear decay to zero at the last planned step
            return (step + 1) / warm if step < warm else max(0.0, (total - step) / max(total - warm, 1))

        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, rate)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        torch = require("torch", extra="nlp")
        lengths = encoder.token_lengths(self._tokenizer_, texts)
        out = np.zeros((len(texts), self._n_classes))
        self._model_.eval()
        with torch.inference_mode():
            for rows in encoder.length_batches(lengths, 64):
                batch = encoder.encode(self._tokenizer_, [texts[i] for i in rows], self.max_length)
                out[rows] = torch.softmax(self._model_(**batch).logits, dim=-1).double().numpy()
        return out
