"""`modelplane runs list|show|compare`: browse the runs of experiments, as MLflow's UI does.

- `runs list [--experiment E] [--sort-by METRIC] [--desc|--asc]`: one row per run (NAME,
  EXPERIMENT, PHASE, PARENT, the sort metric's last value, AGE). With `--sort-by`, runs that
  never logged the metric come last; the order is the experiment's objective goal when
  `--experiment` is given and its objective is that metric, else highest first.
- `runs show RUN`: params, code, data, environment, metric summaries and conditions.
- `runs compare A B [C...]`: params, metrics (last values) and what the runs ran (experiment,
  phase, commit, data digests, image) side by side; `*` marks what differs.

Tables by default; `-o json` / `-o yaml` print the same information as data (`runs show`
prints the Run object itself). Exit codes: 0 ok, 1 error, 2 usage, 3 a run not found.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from modelplane.api import Experiment, Run
from modelplane.cli import run_views
from modelplane.cli.errors import UsageError, exits, with_exit_codes
from modelplane.cli.kubeaccess import Kube, add_connection_arguments, connect_from
from modelplane.cli.output import add_output_argument, render_data, strip_managed_fields


def register(commands: Any) -> None:
    runs = with_exit_codes(
        commands.add_parser(
            "runs", help="list, show and compare runs", description=__doc__.split("\n\n")[0]
        )
    )
    sub = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")

    listing = _command(sub, "list", "one row per run, optionally sorted by a metric")
    listing.add_argument("--experiment", "-e", help="only the runs of this experiment")
    listing.add_argument(
        "--sort-by", metavar="METRIC", help="sort by this metric's last value and show it"
    )
    order = listing.add_mutually_exclusive_group()
    order.add_argument(
        "--desc",
        dest="descending",
        action="store_const",
        const=True,
        help="highest first (default, unless the experiment's objective minimizes METRIC)",
    )
    order.add_argument(
        "--asc", dest="descending", action="store_const", const=False, help="lowest first"
    )
    listing.set_defaults(run=exits(_list))

    show = _command(sub, "show", "params, code, data, environment, metrics and conditions")
    show.add_argument("name", metavar="RUN", help="name of the run")
    show.set_defaults(run=exits(_show))

    compare = _command(sub, "compare", "params and metrics of runs side by side")
    compare.add_argument("names", metavar="RUN", nargs="+", help="two or more runs")
    compare.set_defaults(run=exits(_compare))


def _command(sub: Any, name: str, summary: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=summary, description=summary)
    add_connection_arguments(parser)
    add_output_argument(parser)
    return with_exit_codes(parser)


def _list(args: argparse.Namespace) -> int:
    kube = connect_from(args)
    runs = kube.list(Run)
    objective = None
    if args.experiment is not None:
        # Runs may name an experiment that has no object (yet): list them all the same.
        experiment = kube.find(Experiment, args.experiment)
        objective = experiment.spec.objective if experiment is not None else None
        runs = [run for run in runs if run.spec.experiment == args.experiment]
    metric: str | None = args.sort_by
    descending: bool = args.descending
    if descending is None:
        descending = run_views.default_descending(metric, objective) if metric else False
    runs = run_views.sort_runs(runs, metric, descending=descending)
    if args.output != "table":
        print(render_data([run_views.run_record(run) for run in runs], args.output))
    elif runs:
        print(run_views.runs_table(runs, metric, _now()))
    else:
        of = f" of experiment {args.experiment}" if args.experiment else ""
        print(f"No runs{of} found in namespace {kube.namespace}.")
    return 0


def _show(args: argparse.Namespace) -> int:
    kube = connect_from(args)
    obj = kube.get_object(Run, args.name)
    if args.output != "table":
        print(render_data(strip_managed_fields(obj), args.output))
        return 0
    print(run_views.run_details(Run.from_object(obj), _now()))
    return 0


def _compare(args: argparse.Namespace) -> int:
    names: list[str] = args.names
    if len(names) < 2:
        raise UsageError("runs compare needs at least two runs")
    if len(set(names)) != len(names):
        raise UsageError("runs compare needs distinct runs; a run is named twice")
    kube = connect_from(args)
    comparison = run_views.compare_runs(_get_runs(kube, names))
    if args.output != "table":
        print(render_data(run_views.comparison_data(comparison), args.output))
    else:
        print(run_views.comparison_text(comparison))
    return 0


def _get_runs(kube: Kube, names: list[str]) -> list[Run]:
    return [kube.get(Run, name) for name in names]


def _now() -> datetime:
    return datetime.now(UTC)
