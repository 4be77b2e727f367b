"""ONNX export of a fine-tuned MiniLM: the fp32 graph reproduces torch, int8 keeps the predictions in a
smaller file, the served model pickles, and a bad export directory is refused clearly. The model is tiny
(one epoch, 16-token window): these test the plumbing, not the accuracy."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest

from stackml.errors import InputError
from stackml.nlp import TextClassifier
from stackml.nlp.fast import FILES, OnnxTextModel, export_onnx, latency


@pytest.fixture(scope="module")
def fitted(minilm) -> TextClassifier:
    pytest.importorskip("onnxruntime")
    return minilm


@pytest.fixture(scope="module")
def exported(fitted, tmp_path_factory):
    directory = tmp_path_factory.mktemp("onnx")
    return directory, export_onnx(fitted.model_, directory)


@pytest.fixture(scope="module")
def fp32(exported) -> OnnxTextModel:
    return OnnxTextModel(exported[0], "fp32")


@pytest.fixture(scope="module")
def int8(exported) -> OnnxTextModel:
    return OnnxTextModel(exported[0], "int8")


@pytest.mark.slow
def test_export_writes_a_self_contained_directory_and_nothing_else(exported, fitted) -> None:
    directory, paths = exported
    assert set(paths) == {"fp32", "int8", "tokenizer", "meta"}
    assert all(p.exists() and p.parent == directory for p in paths.values())
    assert sorted(p.name for p in directory.iterdir()) == sorted(p.name for p in paths.values())  # no temps
    assert not fitted.model_._model_.training  # exporting must not leave dropout switched on


@pytest.mark.slow
def test_fp32_reproduces_the_torch_model(fp32, fitted, test_set) -> None:
    texts = test_set[0]
    proba = fp32.predict_proba(texts)
    assert proba.shape == (len(texts), len(fitted.classes_)) == (len(texts), fp32.n_classes)
    assert fp32.max_length == fitted.model_.max_length == 12
    np.testing.assert_allclose(proba, fitted.predict_proba(texts), atol=1e-4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert fp32.predict_proba([]).shape == (0, fp32.n_classes)
    with pytest.raises(InputError, match="got a single str"):
        fp32.predict_proba(texts[0])


@pytest.mark.slow
def test_int8_agrees_with_fp32_in_less_than_half_the_file(int8, fp32, exported, test_set) -> None:
    texts = test_set[0]
    agree = (int8.predict_proba(texts).argmax(axis=1) == fp32.predict_proba(texts).argmax(axis=1)).mean()
    assert agree >= 0.9
    paths = exported[1]
    assert paths["int8"].stat().st_size < paths["fp32"].stat().st_size / 2


@pytest.mark.slow
def test_a_pickled_model_predicts_the_same_without_its_directory(exported, test_set, tmp_path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(exported[0], copy)
    model = OnnxTextModel(copy, "int8")
    expected = model.predict_proba(test_set[0])  # the session now exists; pickling must drop it
    restored = pickle.loads(pickle.dumps(model))
    shutil.rmtree(copy)  # the pickle carries the model's bytes and tokenizer
    np.testing.assert_allclose(restored.predict_proba(test_set[0]), expected, atol=1e-12)


@pytest.mark.slow
def test_latency_of_the_int8_model(int8, test_set) -> None:
    measured = latency(int8.predict_proba, test_set[0], repeats=20, warmup=2)
    assert set(measured) == {"p50_ms", "p99_ms", "texts_per_s"}
    assert 0 < measured["p50_ms"] <= measured["p99_ms"] and measured["texts_per_s"] > 0


@pytest.mark.slow
def test_a_failed_export_leaves_nothing_behind(fitted, tmp_path, monkeypatch) -> None:
    import stackml.nlp.fast as fast

    def broken(source, target) -> None:
        target.write_bytes(b"half")
        raise RuntimeError("quantisation failed")

    monkeypatch.setattr(fast, "_quantize", broken)
    with pytest.raises(RuntimeError, match="quantisation failed"):
        export_onnx(fitted, tmp_path)  # a TextClassifier is accepted as well as its model
    assert list(tmp_path.iterdir()) == []


def test_a_directory_without_an_export_is_refused_with_what_it_holds(tmp_path) -> None:
    (tmp_path / FILES["fp32"]).write_bytes(b"")
    with pytest.raises(InputError, match=r"missing \['model_int8.onnx', 'tokenizer', 'export.json'\]") as err:
        OnnxTextModel(tmp_path, "int8")
    assert "it holds ['model_fp32.onnx']" in str(err.value) and "quantize=False" in str(err.value)
    assert "export_onnx(model, directory)" in str(err.value)
    with pytest.raises(InputError, match="not a directory"):
        OnnxTextModel(tmp_path / "nowhere", "fp32")


def test_an_unknown_variant_or_an_unfitted_model_is_refused(tmp_path) -> None:
    with pytest.raises(InputError, match=r"Unknown ONNX variant 'fp16'; the variants are \['fp32', 'int8'\]"):
        OnnxTextModel(tmp_path, "fp16")
    with pytest.raises(InputError, match="needs a fine-tuned MiniLM model; got TextClassifier"):
        export_onnx(TextClassifier("minilm"), tmp_path)


def test_latency_reports_percentiles_and_throughput() -> None:
    calls = []
    measured = latency(lambda texts: calls.append(len(texts)), ["a", "b", "c"], repeats=5, warmup=2)
    assert calls == [1] * 7 + [3]  # warm-up, timed single texts, one batched call
    assert 0 <= measured["p50_ms"] <= measured["p99_ms"] and measured["texts_per_s"] > 0
    with pytest.raises(InputError, match="at least one text"):
        latency(lambda texts: None, [])
