"""The Prometheus exposition: counters, a cumulative histogram and gauges, in valid text format."""

from __future__ import annotations

import re

from stackml.serving.metrics import Gauge, Metrics

# One sample line of the text format 0.0.4: name, optional labels with escaped values, a number.
SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*")*\})?'
    r" (?:[-+]?[0-9.]+(?:e[-+]?[0-9]+)?|\+Inf|NaN)$"
)


def parse(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$", line), line
            continue
        assert SAMPLE.match(line), f"not a valid sample line: {line!r}"
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    return samples


def test_requests_errors_and_latency_per_model():
    m = Metrics(buckets=(0.01, 0.1))
    m.observe_request("demand", "predict", 200, 0.005)
    m.observe_request("demand", "predict", 200, 0.05)
    m.observe_request("demand", "predict", 422, 0.5)
    m.observe_request("churn", "predict", 200, 0.01)  # on a bucket's bound: counted in that bucket
    m.count_records("demand", "3", 7)

    s = parse(m.render())

    assert s['stackml_requests_total{model="demand",endpoint="predict",status="200"}'] == 2
    assert s['stackml_requests_total{model="demand",endpoint="predict",status="422"}'] == 1
    assert s['stackml_errors_total{model="demand",status="422"}'] == 1
    assert 'stackml_errors_total{model="churn",status="200"}' not in s
    buckets = [
        s[f'stackml_request_duration_seconds_bucket{{model="demand",endpoint="predict",le="{le}"}}']
        for le in ("0.01", "0.1", "+Inf")
    ]
    assert buckets == [1, 2, 3]  # cumulative
    assert s['stackml_request_duration_seconds_count{model="demand",endpoint="predict"}'] == 3
    assert abs(s['stackml_request_duration_seconds_sum{model="demand",endpoint="predict"}'] - 0.555) < 1e-9
    assert s['stackml_request_duration_seconds_bucket{model="churn",endpoint="predict",le="0.01"}'] == 1
    assert s['stackml_predicted_records_total{model="demand",version="3"}'] == 7


def test_collectors_and_label_escaping():
    m = Metrics()
    m.add_collector(
        lambda: [Gauge("stackml_model_version", "Version served.", {(("model", 'a"b\\c\n'),): 4})]
    )
    m.add_collector(lambda: [Gauge("stackml_rows_total", "Rows.", {(): 12}, kind="counter")])
    text = m.render()
    s = parse(text)
    assert s['stackml_model_version{model="a\\"b\\\\c\\n"}'] == 4
    assert s["stackml_rows_total"] == 12
    assert "# TYPE stackml_rows_total counter" in text
    assert "# TYPE stackml_model_version gauge" in text
