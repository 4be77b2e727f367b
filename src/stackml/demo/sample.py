"""The bundled demo sample: two years of daily sales for a handful of stores, generated with a fixed seed.

The CSV shipped in ``stackml/demo/data/store_sales.csv`` is exactly ``store_sales()``; a test keeps the two in
step, so the file can always be rebuilt with ``python -m stackml.demo.sample``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE_FILE = "store_sales.csv"


def store_sales(
    n_stores: int = 5, start: str = "2024-01-01", days: int = 730, random_state: int = 7
) -> pd.DataFrame:
    """Long frame ``unique_id, ds, y``: weekly and yearly seasonality, a gentle trend and noise per store."""
    rng = np.random.default_rng(random_state)
    ds = pd.date_range(start, periods=days, freq="D")
    t = np.arange(days)
    frames = []
    for i in range(n_stores):
        level = rng.uniform(80, 300)
        weekly = 1 + rng.uniform(0.1, 0.35) * np.sin(2 * np.pi * (t + rng.integers(7)) / 7)
        yearly = 1 + rng.uniform(0.05, 0.2) * np.sin(2 * np.pi * t / 365.25 + rng.uniform(0, 2 * np.pi))
        trend = 1 + rng.uniform(-0.1, 0.3) * t / days
        noise = rng.normal(1, 0.05, days)
        y = np.round(level * weekly * yearly * trend * noise, 2)
        frames.append(pd.DataFrame({"unique_id": f"store_{i + 1}", "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


def sample_path() -> Path:
    """Path of the bundled CSV inside the installed package."""
    return Path(str(resources.files("stackml.demo") / "data" / SAMPLE_FILE))


if __name__ == "__main__":
    store_sales().to_csv(Path(__file__).parent / "data" / SAMPLE_FILE, index=False, date_format="%Y-%m-%d")
