"""The statistics and parsing helpers the benchmarks report with."""

from __future__ import annotations

import math

import pytest
from bench.artifact_verification import RAW_READ, RAW_READINTO, VERIFY, Sample, round_ratios
from bench.common import Distribution, parse_prometheus, percentile, sum_samples, table


def test_percentile_interpolates_between_closest_ranks() -> None:
    """Matches numpy's default (linear) method."""
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 100) == 4.0
    assert percentile(list(range(101)), 99) == pytest.approx(99.0)
    assert percentile([1.0, 2.0], 90) == pytest.approx(1.9)


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([7.5], 99) == 7.5


def test_percentile_is_unbounded_once_it_reaches_a_censored_sample() -> None:
    """A superseded promotion counts as infinite latency: it can only make percentiles worse."""
    values = [0.1] * 98 + [math.inf, math.inf]
    assert percentile(values, 50) == pytest.approx(0.1)
    assert math.isinf(percentile(values, 99))
    assert not math.isnan(percentile(values, 99))


def test_percentile_rejects_no_values_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_distribution_summarizes_and_scales() -> None:
    d = Distribution.of([0.001 * i for i in range(1, 101)])
    assert (d.count, d.min, d.max) == (100, 0.001, 0.1)
    assert d.p50 == pytest.approx(0.0505)
    ms = d.scaled(1000)
    assert ms.p99 == pytest.approx(d.p99 * 1000)
    assert ms.count == 100


def test_table_is_markdown_with_rounded_floats() -> None:
    text = table(["name", "value"], [["a", 1.23456], ["b", 1234.5], ["c", 3]])
    assert text.splitlines() == [
        "| name | value |",
        "|---|---|",
        "| a | 1.235 |",
        "| b | 1234.5 |",
        "| c | 3 |",
    ]


def test_prometheus_samples_are_parsed_and_summed_by_labels() -> None:
    text = "\n".join(
        [
            "# HELP modelplane_reconciles_total Reconciliations.",
            "# TYPE modelplane_reconciles_total counter",
            'modelplane_reconciles_total{kind="ModelVersion",result="success"} 10.0',
            'modelplane_reconciles_total{kind="ModelVersion",result="retry"} 2.0',
            'modelplane_reconciles_total{kind="ModelStage",result="success"} 5.0',
            'modelplane_reconciles_created{kind="ModelStage",result="success"} 1.7e9',
            "",
        ]
    )
    samples = parse_prometheus(text)
    assert len(samples) == 4
    assert sum_samples(samples, "modelplane_reconciles_total") == 17.0
    assert sum_samples(samples, "modelplane_reconciles_total", kind="ModelVersion") == 12.0
    assert sum_samples(samples, "modelplane_reconciles_total", kind="ModelStage") == 5.0


def test_artifact_ratios_take_the_faster_raw_read_and_the_busier_machine() -> None:
    """Each round's verify is compared with that round's faster single-stream raw read."""

    def sample(seconds: float, others_cpu: float) -> Sample:
        return Sample(seconds, 0.5, 0.5, 0.1, others_cpu)

    samples = {
        VERIFY: [sample(1.0, 0.1), sample(1.0, 0.0)],
        RAW_READ: [sample(0.5, 0.4), sample(0.8, 0.0)],
        RAW_READINTO: [sample(0.8, 0.0), sample(0.4, 0.2)],
    }
    throughput = {name: [1024 / s.seconds for s in taken] for name, taken in samples.items()}
    pairs = round_ratios(samples, throughput, VERIFY)
    assert pairs == [(pytest.approx(0.5), pytest.approx(0.8)), (pytest.approx(0.4), 0.5)]
