"""Model specs and serving options: parsed strictly, every problem reported at once."""

from __future__ import annotations

import pytest

from stackml.errors import InputError
from stackml.serving.options import ModelSpec, ServingOptions, parse_enrich, parse_model_specs


def test_specs_from_a_string_or_a_list():
    assert parse_model_specs("demand, churn@challenger,") == [
        ModelSpec("demand"),
        ModelSpec("churn", "challenger"),
    ]
    assert parse_model_specs(["a@b", ModelSpec("c")]) == [ModelSpec("a", "b"), ModelSpec("c", "champion")]
    assert str(ModelSpec("demand")) == "demand@champion"


def test_every_malformed_spec_is_named():
    with pytest.raises(InputError, match=r"got '@x', 'a b'.") as info:
        parse_model_specs("@x,a b,fine")
    assert "'@x'" in str(info.value) and "'a b'" in str(info.value)
    assert "--models demand@champion" in info.value.hint


def test_a_model_served_twice_or_none_at_all():
    with pytest.raises(InputError, match=r"more than once: \['a'\]"):
        parse_model_specs("a@champion,a@challenger")
    with pytest.raises(InputError, match="No model to serve"):
        parse_model_specs(" , ")


def test_options_are_validated_together():
    with pytest.raises(
        InputError, match="'max_body_bytes' must be a positive integer, got 0.*'log_flush_interval_s'"
    ):
        ServingOptions(max_body_bytes=0, log_flush_interval_s=-1)
    with pytest.raises(InputError, match="'log_batch_size'"):
        ServingOptions(log_batch_size=True)


def test_enrich_items_are_model_equals_service():
    assert parse_enrich(["churn=customer_features", " demand = store_features "]) == {
        "churn": "customer_features",
        "demand": "store_features",
    }
    assert parse_enrich(["a=s", "a=s"]) == {"a": "s"}
    with pytest.raises(
        InputError, match="'churn' is not MODEL=SERVICE; 'a b=c' is not MODEL=SERVICE; model 'a'"
    ) as info:
        parse_enrich(["churn", "a b=c", "a=s", "a=t"])
    assert "given two services ('s' and 't')" in str(info.value)
    assert "--enrich churn=customer_features" in info.value.hint
    with pytest.raises(InputError, match="'enrich' must map model names to feature service names"):
        ServingOptions(enrich={"a": ""})
