"""What `modelplane runs` shows: sorting, the list table, one run, and comparisons."""

from __future__ import annotations

from datetime import UTC, datetime

from cli_objects import COMMIT, OTHER_COMMIT, experiment, run, summary

from modelplane.api import Experiment, Run
from modelplane.cli.run_views import (
    compare_runs,
    comparison_data,
    comparison_text,
    default_descending,
    run_details,
    run_record,
    runs_table,
    sort_runs,
)

NOW = datetime(2025, 3, 1, 12, 10, tzinfo=UTC)


def runs() -> list[Run]:
    return [
        Run.from_object(run("b", metrics={"val_auc": summary(0.81), "loss": summary(0.3)})),
        Run.from_object(run("a", metrics={"val_auc": summary(0.87), "loss": summary(0.2)})),
        Run.from_object(run("c", metrics={}, phase="Running")),
        Run.from_object(run("d", metrics={"val_auc": summary(0.81)})),
    ]


def names(items: list[Run]) -> list[str]:
    return [item.metadata.name or "" for item in items]


def test_sorting_by_a_metric_puts_runs_without_it_last_in_either_order() -> None:
    assert names(sort_runs(runs(), "val_auc", descending=True)) == ["a", "b", "d", "c"]
    assert names(sort_runs(runs(), "val_auc", descending=False)) == ["b", "d", "a", "c"]


def test_sorting_without_a_metric_is_by_name() -> None:
    assert names(sort_runs(runs(), None, descending=False)) == ["a", "b", "c", "d"]


def test_the_default_order_follows_the_objective_of_the_sort_metric() -> None:
    minimizing = Experiment.from_object(experiment(metric="loss", goal="minimize")).spec.objective
    assert default_descending("loss", minimizing) is False
    assert default_descending("val_auc", minimizing) is True
    assert default_descending("loss", None) is True


def test_the_list_table_shows_the_sort_metric_and_age() -> None:
    text = runs_table(sort_runs(runs(), "val_auc", descending=True), "val_auc", NOW)
    assert text.splitlines() == [
        "NAME   EXPERIMENT   PHASE      PARENT   VAL_AUC   AGE",
        "a      churn        Finished   <none>   0.87      10m",
        "b      churn        Finished   <none>   0.81      10m",
        "d      churn        Finished   <none>   0.81      10m",
        "c      churn        Running    <none>   <none>    10m",
    ]


def test_the_list_table_has_no_metric_column_without_a_sort_metric() -> None:
    header = runs_table(runs(), None, NOW).splitlines()[0]
    assert header.split() == ["NAME", "EXPERIMENT", "PHASE", "PARENT", "AGE"]


def test_a_list_record_holds_typed_values_for_scripts() -> None:
    record = run_record(Run.from_object(run("a", metrics={"val_auc": summary(0.87)}, parent="p")))
    assert record == {
        "name": "a",
        "namespace": None,
        "experiment": "churn",
        "phase": "Finished",
        "parent": "p",
        "metrics": {"val_auc": 0.87},
        "creationTimestamp": "2025-03-01T12:00:00Z",
    }


def test_show_prints_every_section() -> None:
    obj = run(
        "a",
        params={"max_depth": "6", "learning_rate": "0.05"},
        metrics={"val_auc": summary(0.87, step=99, low=0.61, high=0.88)},
        dirty=True,
    )
    obj["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Finished",
            "message": "the run finished",
            "lastTransitionTime": "2025-03-01T12:05:30Z",
        }
    ]
    text = run_details(Run.from_object(obj), NOW)
    assert "Phase:       Finished" in text
    assert "Duration:    5m30s" in text
    assert f"Commit:      {COMMIT}" in text
    assert "Dirty:       true (uncommitted changes)" in text
    assert "train   s3://datasets/churn/train.parquet   md5:" in text
    assert "Python:        3.11.7" in text
    params = text.split("Params:\n")[1].split("\n\n")[0].splitlines()
    assert params == ["  NAME            VALUE", "  learning_rate   0.05", "  max_depth       6"]
    assert "  val_auc   0.87   99     0.61   0.88   100" in text
    assert "  Ready   True     Finished   4m30s   the run finished" in text


def test_show_says_none_for_empty_sections() -> None:
    text = run_details(Run.from_object(run("a", phase=None)), NOW)
    assert "Params:  <none>" in text
    assert "Metrics:  <none>" in text
    assert "Conditions:  <none>" in text
    assert "Duration:    <none>" in text


def test_compare_marks_only_the_fields_that_differ() -> None:
    first = run("a", params={"lr": "0.05", "depth": "6"}, metrics={"val_auc": summary(0.87)})
    second = run(
        "b",
        params={"lr": "0.1", "depth": "6", "seed": "1"},
        metrics={"val_auc": summary(0.87), "loss": summary(0.2)},
        commit=OTHER_COMMIT,
    )
    comparison = compare_runs([Run.from_object(first), Run.from_object(second)])
    differing = {(f.section, f.name) for f in comparison.fields if f.differs}
    assert differing == {
        ("run", "code"),
        ("param", "lr"),
        ("param", "seed"),
        ("metric", "loss"),
    }
    text = comparison_text(comparison)
    assert text.split("\n\n")[1:3] == [
        "  PARAM   a        b\n  depth   6        6\n* lr      0.05     0.1\n* seed    <none>   1",
        "  METRIC (LAST)   a        b\n"
        "* loss            <none>   0.2\n"
        "  val_auc         0.87     0.87",
    ]
    lines = text.splitlines()
    assert f"* code         {COMMIT[:12]:<25}   {OTHER_COMMIT[:12]}" in lines
    assert "  image        churn@sha256:eeeeeeeeeeee   churn@sha256:eeeeeeeeeeee" in lines
    assert lines[-1] == "* the values differ between the runs"


def test_compare_data_holds_full_values_by_run() -> None:
    first = run("a", params={"lr": "0.05"}, metrics={"val_auc": summary(0.87)})
    second = run("b", params={"lr": "0.1"}, metrics={})
    data = comparison_data(compare_runs([Run.from_object(first), Run.from_object(second)]))
    assert data["runs"] == ["a", "b"]
    assert data["params"] == [{"name": "lr", "values": {"a": "0.05", "b": "0.1"}, "differs": True}]
    assert data["metrics"] == [
        {"name": "val_auc", "values": {"a": 0.87, "b": None}, "differs": True}
    ]
    code = next(f for f in data["run"] if f["name"] == "code")
    assert code == {
        "name": "code",
        "values": {
            "a": f"https://git.example.com/ml/churn.git@{COMMIT}",
            "b": f"https://git.example.com/ml/churn.git@{COMMIT}",
        },
        "differs": False,
    }
