"""Stop the benchmarks' local control plane (`LocalCluster("bench")`) and delete its data."""

from __future__ import annotations

from bench.common import CLUSTER_NAME
from modelplane.localcluster.cluster import LocalCluster

if __name__ == "__main__":
    LocalCluster(CLUSTER_NAME).down(progress=print)
