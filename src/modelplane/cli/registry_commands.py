"""`modelplane models list|versions` and `modelplane lineage`: the model registry, read-only.

- `models list`: one row per model (MODEL, LATEST version, VERSIONS count, STAGES: the live
  version of each stage, and the desired one while a change is pending).
- `models versions MODEL`: the versions of one model, newest first, with their run, whether
  the artifact is verified, and the stages where each is live.
- `lineage MODEL VERSION`: how a version was made, as a tree: run (phase), experiment
  (objective), code, data, params, metrics, environment, artifact and stages. It is read from
  the version's lineage snapshot (`status.lineage`); without one, from the run as it is now,
  and the output says which.

Tables and trees by default; `-o json` / `-o yaml` print the same information as data. Exit
codes: 0 ok, 1 error, 2 usage, 3 the model or version not found.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from modelplane.api import Experiment, ModelStage, ModelVersion, Run, model_version_name
from modelplane.cli import lineage_tree, model_views
from modelplane.cli.arguments import version_number
from modelplane.cli.errors import NotFound, exits, with_exit_codes
from modelplane.cli.kubeaccess import Kube, add_connection_arguments, connect_from
from modelplane.cli.output import add_output_argument, render_data, render_tree


def register(commands: Any) -> None:
    models = with_exit_codes(
        commands.add_parser(
            "models", help="list models and their versions", description="The model registry."
        )
    )
    sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    listing = _command(sub, "list", "one row per model: latest version, versions, live stages")
    listing.set_defaults(run=exits(_list))
    versions = _command(sub, "versions", "the versions of one model, newest first")
    versions.add_argument("model", metavar="MODEL", help="model name, e.g. churn-model")
    versions.set_defaults(run=exits(_versions))

    lineage = _command(
        commands, "lineage", "how a model version was made: run, experiment, code, data, ..."
    )
    lineage.add_argument("model", metavar="MODEL", help="model name, e.g. churn-model")
    lineage.add_argument("version", metavar="VERSION", type=version_number, help="version number")
    lineage.set_defaults(run=exits(_lineage))


def _command(sub: Any, name: str, summary: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=summary, description=summary)
    add_connection_arguments(parser)
    add_output_argument(parser)
    return with_exit_codes(parser)


def _list(args: argparse.Namespace) -> int:
    kube = connect_from(args)
    summaries = model_views.summarize_models(kube.list(ModelVersion), kube.list(ModelStage))
    if args.output != "table":
        print(render_data([model_views.model_record(s) for s in summaries], args.output))
    elif summaries:
        print(model_views.models_table(summaries))
    else:
        print(f"No models found in namespace {kube.namespace}.")
    return 0


def _versions(args: argparse.Namespace) -> int:
    kube = connect_from(args)
    versions = model_views.versions_of(args.model, kube.list(ModelVersion))
    if not versions:
        raise NotFound(f"model {args.model} has no versions in namespace {kube.namespace}")
    if args.output != "table":
        print(render_data([model_views.version_record(mv) for mv in versions], args.output))
    else:
        print(model_views.versions_table(versions, _now()))
    return 0


def _lineage(args: argparse.Namespace) -> int:
    kube = connect_from(args)
    report = read_lineage(kube, args.model, args.version)
    if args.output != "table":
        print(render_data(lineage_tree.lineage_data(report), args.output))
    else:
        print(render_tree(lineage_tree.lineage_tree(report)))
        print(report.note)
    return 0


def read_lineage(kube: Kube, model: str, version: int) -> lineage_tree.LineageReport:
    """Reads the version, its run and the run's experiment, and builds the lineage report."""
    name = model_version_name(model, version)
    mv = kube.find(ModelVersion, name)
    if mv is None:
        raise NotFound(
            f"model {model} has no version {version} in namespace {kube.namespace} "
            f"(no ModelVersion {name})"
        )
    run = kube.find(Run, mv.spec.run) if mv.spec.run else None
    recorded = mv.status.lineage if mv.status else None
    experiment_name = (recorded.experiment if recorded else None) or (
        run.spec.experiment if run else None
    )
    experiment = kube.find(Experiment, experiment_name) if experiment_name else None
    return lineage_tree.build_report(mv, run, experiment, _now())


def _now() -> datetime:
    return datetime.now(UTC)
