"""Training speed of our MiniLM fine-tune against HuggingFace ``Trainer`` with its defaults, epoch for epoch.

The full NLP bench (``bench/nlp.py``) compares the two on all of BANKING77, which takes over an hour and is
easily disturbed by other work on the machine. This one times the same thing small and quiet: one epoch of
each on the same stratified slice of the training file, one after the other in one process, and reports
texts per second and the ratio, plus the load average before and after (a busy machine shows there).

    .venv/bin/python bench/nlp_epoch_speed.py [--texts 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_info, markdown_table, write_results

DATA = Path(os.environ.get("STACKML_BANKING77", REPO.parent / "shared" / "data" / "banking77"))
RESULTS = REPO / "bench" / "results" / "nlp_epoch_speed.md"


def _slice(n: int):
    import pandas as pd

    frame = pd.read_csv(DATA / "train.csv")
    share = min(1.0, n / len(frame))
    return frame.groupby("category", group_keys=False).sample(frac=share, random_state=0)


def ours(texts: list[str], labels: list[str]) -> float:
    from stackml.nlp import TextClassifier

    started = time.perf_counter()
    # no validation split: the same texts and work as the peer's epoch
    TextClassifier("minilm", epochs=1, validation_share=0.0).fit(texts, labels)
    return time.perf_counter() - started


def peer(texts: list[str], labels: list[str]) -> float:
    from _hf_trainer import trainer_finetune

    return trainer_finetune(texts, labels, texts[:64], labels[:64], epochs=1)["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    frame = _slice(args.texts)
    texts, labels = frame["text"].tolist(), frame["category"].tolist()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    ours_s, peer_s = ours(texts, labels), peer(texts, labels)
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = [
        ["stackml `minilm` (batches of 32, sorted by length)", f"{ours_s:.1f}", f"{len(texts) / ours_s:.1f}"]
        + ["1.00"],
        ["HuggingFace `Trainer`, defaults (batches of 8)", f"{peer_s:.1f}", f"{len(texts) / peer_s:.1f}"]
        + [f"{peer_s / ours_s:.2f}"],
    ]
    body = "\n".join(
        [
            f"One epoch on {len(texts):,} BANKING77 training texts (stratified), model load included.\n",
            markdown_table(["fine-tune", "seconds", "texts/s", "time vs ours"], rows),
            f"\nLoad average before / after: {load_before} / {load_after}.",
        ]
    )
    print(body)
    info = machine_info(["torch", "transformers", "accelerate"])
    write_results(
        RESULTS, "NLP: one fine-tuning epoch, ours vs Trainer", [".venv/bin/python", *sys.argv], info, body
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
