"""The M4 wide-CSV loader and constants, on small files written like the competition's
(quoted, right-padded)."""

from __future__ import annotations

import numpy as np
import pytest

from stackml.errors import InputError
from stackml.forecasting.m4 import M4_SPECS, get_m4_spec, load_m4_wide


def _write_wide(path, rows: dict[str, list[float]], width: int | None = None):
    """Write rows the M4 way: every cell quoted, short rows padded with empty cells."""
    width = width or max(len(v) for v in rows.values())
    lines = [",".join(f'"V{i}"' for i in range(1, width + 2))]
    for uid, values in rows.items():
        cells = [f'"{uid}"'] + [f'"{v:g}"' for v in values] + [""] * (width - len(values))
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def files(tmp_path):
    train = _write_wide(
        tmp_path / "train.csv", {"H1": [1, 2, 3, 4, 5], "H2": [10, 20, 30], "H3": [7, 8, 9, 10]}
    )
    test = _write_wide(tmp_path / "test.csv", {"H1": [6, 7], "H2": [40, 50], "H3": [11, 12]})
    return train, test


def test_loads_train_and_test_as_long_integer_steps(files):
    train, test = load_m4_wide(*files)
    assert list(train.columns) == ["unique_id", "ds", "y"]
    assert train["ds"].dtype == np.int64 and train["y"].dtype == np.float64
    h2 = train[train.unique_id == "H2"]
    assert h2["ds"].tolist() == [1, 2, 3] and h2["y"].tolist() == [10, 20, 30]
    assert len(train) == 12
    # test steps continue each series where its training data ends
    assert test[test.unique_id == "H1"]["ds"].tolist() == [6, 7]
    assert test[test.unique_id == "H2"][["ds", "y"]].to_numpy().tolist() == [[4, 40], [5, 50]]
    assert train.attrs["m4_frequency"] == "Hourly"  # inferred from the H prefix


def test_train_only_and_unknown_prefix(tmp_path):
    path = _write_wide(tmp_path / "x.csv", {"A1": [1, 2], "B7": [3]})
    train, test = load_m4_wide(path)
    assert test is None and train.attrs["m4_frequency"] is None
    assert train.unique_id.tolist() == ["A1", "A1", "B7"]


def test_test_rows_are_matched_by_id(files, tmp_path):
    shuffled = _write_wide(tmp_path / "t2.csv", {"H3": [11, 12], "H1": [6, 7], "H2": [40, 50]})
    _, test = load_m4_wide(files[0], shuffled)
    assert test[test.unique_id == "H3"][["ds", "y"]].to_numpy().tolist() == [[5, 11], [6, 12]]


def test_frequency_checks_the_test_horizon(files):
    with pytest.raises(InputError, match="Hourly horizon is 48"):
        load_m4_wide(*files, frequency="Hourly")
    with pytest.raises(InputError, match="Unknown M4 frequency 'Fortnightly'"):
        load_m4_wide(*files, frequency="Fortnightly")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('"id","V2"\n"H1","1"\n', "not an M4 wide file: the first column must be the id column 'V1'"),
        (
            '"V1","V2","V4"\n"H1","1","2"\n',
            r"value columns must be V2, V3, ... in order; unexpected \['V4'\]",
        ),
        ('"V1"\n"H1"\n', "there are no value columns"),
        (
            '"V1","V2","V3"\n"H1","1","x"\n',
            r"non-numeric values in columns \['V3'\] \(e.g. 'x' in series 'H1'\)",
        ),
        ('"V1","V2","V3","V4"\n"H1","1","","3"\n"H2","1","2",""\n', r"empty cells inside series \['H1'\]"),
        ('"V1","V2"\n"H1","1"\n"H1","2"\n', r"duplicate ids \['H1'\]"),
        ('"V1","V2","V3"\n"H1","1","2"\n"H2","",""\n', r"series without values \['H2'\]"),
        ("", "Cannot read"),
    ],
)
def test_rejects_files_that_are_not_m4_wide(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        load_m4_wide(path)


def test_reports_several_row_problems_together(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('"V1","V2","V3"\n"H1","","2"\n"H1","1","2"\n')
    with pytest.raises(InputError, match=r"duplicate ids \['H1'\].*empty cells inside series"):
        load_m4_wide(path)


def test_rejects_mismatched_test_files(files, tmp_path):
    other = _write_wide(tmp_path / "t3.csv", {"H1": [6, 7], "H9": [1, 2], "H3": [1, 2]})
    with pytest.raises(
        InputError, match=r"1 missing from the test file \['H2'\], 1 not in the training file \['H9'\]"
    ):
        load_m4_wide(files[0], other)
    ragged = _write_wide(tmp_path / "t4.csv", {"H1": [6, 7], "H2": [1], "H3": [1, 2]})
    with pytest.raises(InputError, match="different numbers of values"):
        load_m4_wide(files[0], ragged)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_m4_wide(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="is a directory"):
        load_m4_wide(tmp_path)


def test_specs():
    assert {k: (s.horizon, s.season_length) for k, s in M4_SPECS.items()} == {
        "Yearly": (6, 1),
        "Quarterly": (8, 4),
        "Monthly": (18, 12),
        "Weekly": (13, 1),
        "Daily": (14, 1),
        "Hourly": (48, 24),
    }
    assert get_m4_spec("hourly") is M4_SPECS["Hourly"] is get_m4_spec("H")
    assert sum(s.n_series for s in M4_SPECS.values()) == 100_000
