"""The NLP bench's peer: all-MiniLM-L6-v2 fine-tuned with HuggingFace's ``Trainer`` and its defaults.

What a user of transformers would write: ``AutoModelForSequenceClassification`` on the same packaged
checkpoint, the same tokenizer and token window, ``TrainingArguments`` left at their defaults (learning rate
5e-5, batches of 8, linear decay, no warm-up, no validation split, no early stopping) except the number of
epochs, which is set to the epochs our fine-tune ran, and the switches that keep it offline and quiet (no
checkpoints, no reporting, no progress bar). It trains on the whole training file (ours holds a tenth back for
validation, so the peer sees more data) and is scored on the same test file.

Needs ``accelerate`` (the ``bench`` extra), which ``Trainer`` requires.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import numpy as np


def trainer_finetune(
    train_texts: list[str],
    train_labels: list[str],
    test_texts: list[str],
    test_labels: list[str],
    *,
    epochs: int,
    max_length: int = 128,
    seed: int = 42,
) -> dict[str, Any]:
    """Fine-tune with ``Trainer``'s defaults for ``epochs`` epochs; test accuracy, macro-F1 and wall time."""
    from sklearn.metrics import accuracy_score, f1_score

    from stackml.embeddings.minilm import load_tokenizer, model_path, quiet_transformers, use_all_threads

    transformers = quiet_transformers()
    use_all_threads()
    classes = sorted(set(train_labels))
    index = {c: i for i, c in enumerate(classes)}
    tokenizer = load_tokenizer()

    def rows(texts: list[str], labels: list[str]) -> list[dict[str, Any]]:
        encoded = tokenizer(texts, truncation=True, max_length=max_length)
        return [
            {**{k: encoded[k][i] for k in encoded}, "labels": index.get(label, -1)}
            for i, label in enumerate(labels)
        ]

    started = time.perf_counter()
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        model_path(),
        num_labels=len(classes),
        id2label=dict(enumerate(classes)),
        label2id=index,
    )
    with tempfile.TemporaryDirectory(prefix="hf-trainer-") as out:
        args = transformers.TrainingArguments(
            output_dir=out,
            num_train_epochs=epochs,
            seed=seed,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            logging_strategy="no",
            use_cpu=True,
        )
        trainer = transformers.Trainer(
            model=model,
            args=args,
            train_dataset=rows(train_texts, train_labels),
            processing_class=tokenizer,  # gives the default collator: dynamic padding per batch
        )
        trainer.train()
        fit_seconds = time.perf_counter() - started
        logits = trainer.predict(rows(test_texts, test_labels)).predictions
    predicted = [classes[i] for i in np.asarray(logits).argmax(axis=1)]
    return {
        "accuracy": float(accuracy_score(test_labels, predicted)),
        "macro_f1": float(f1_score(test_labels, predicted, average="macro")),
        "seconds": fit_seconds,
        "epochs": epochs,
    }
