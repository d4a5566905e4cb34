"""`modelplane cluster up|down|status|env`: the local control plane for demos and tests."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from modelplane.localcluster.binaries import ensure_binaries
from modelplane.localcluster.cluster import LocalCluster


def register(commands: Any) -> None:
    cluster = commands.add_parser("cluster", help="run a local Kubernetes control plane")
    cluster.add_argument("--name", default="default", help="cluster name (default: %(default)s)")
    sub = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    build = sub.add_parser("build", help="build the pinned binaries (cached); print their paths")
    build.set_defaults(run=_build)
    up = sub.add_parser("up", help="build (first time) and start it; print the kubeconfig path")
    up.set_defaults(run=_up)
    down = sub.add_parser("down", help="stop it and delete its data")
    down.set_defaults(run=_down)
    status = sub.add_parser("status", help="say whether it is running")
    status.set_defaults(run=_status)
    env = sub.add_parser("env", help="print shell exports: KUBECONFIG and the S3 store's")
    env.set_defaults(run=_env)


def _progress(message: str) -> None:
    print(message, file=sys.stderr)


def _build(_args: argparse.Namespace) -> int:
    for name, path in ensure_binaries().paths.items():
        print(f"{name} {path}")
    return 0


def _up(args: argparse.Namespace) -> int:
    cluster = LocalCluster(args.name)
    cluster.up(progress=_progress)
    print(cluster.kubeconfig)
    return 0


def _down(args: argparse.Namespace) -> int:
    LocalCluster(args.name).down(progress=_progress)
    return 0


def _status(args: argparse.Namespace) -> int:
    cluster = LocalCluster(args.name)
    if cluster.running():
        print(f"running; KUBECONFIG={cluster.kubeconfig}")
        return 0
    print("not running")
    return 3


def _env(args: argparse.Namespace) -> int:
    cluster = LocalCluster(args.name)
    if not cluster.running():
        print("error: the cluster is not running: run `modelplane cluster up`", file=sys.stderr)
        return 3
    exports = {"KUBECONFIG": str(cluster.kubeconfig), **cluster.s3().env()}
    for key, value in exports.items():
        print(f"export {key}={value}")
    return 0
