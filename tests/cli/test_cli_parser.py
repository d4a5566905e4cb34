"""The command line of the read, approve, fetch and operator commands: options and usage errors."""

from __future__ import annotations

import pytest

from modelplane.cli.main import build_parser, main


@pytest.mark.parametrize(
    "command",
    [
        ["runs", "list"],
        ["runs", "show"],
        ["runs", "compare"],
        ["models", "list"],
        ["models", "versions"],
        ["lineage"],
        ["approve"],
        ["fetch"],
        ["operator"],
    ],
)
def test_every_command_documents_its_exit_codes(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out
    assert "3  not found" in out


def test_read_commands_take_namespace_kubeconfig_and_output() -> None:
    args = build_parser().parse_args(
        ["runs", "list", "-n", "ml", "--kubeconfig", "/k", "-o", "yaml", "--sort-by", "val_auc"]
    )
    assert (args.namespace, args.kubeconfig, args.output, args.sort_by) == (
        "ml",
        "/k",
        "yaml",
        "val_auc",
    )
    assert args.descending is None


def test_asc_and_desc_exclude_each_other() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["runs", "list", "--asc", "--desc"])
    assert exited.value.code == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["lineage", "churn", "0"],
        ["lineage", "churn", "three"],
        ["approve", "churn", "Production"],
        ["runs", "list", "-o", "xml"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2


def test_comparing_fewer_than_two_distinct_runs_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["runs", "compare", "a"]) == 2
    assert main(["runs", "compare", "a", "a"]) == 2
    assert "distinct runs" in capsys.readouterr().err


def test_the_operator_command_takes_the_operators_own_options() -> None:
    args = build_parser().parse_args(
        ["operator", "-n", "ml", "-n", "!kube-*", "--metrics-port", "0", "--webhook", "local"]
    )
    assert args.namespace == ["ml", "!kube-*"]
    assert (args.metrics_port, args.webhook) == (0, "local")
