"""`up` reuses a live cluster, replaces a stale one, and `down` cleans up."""

from __future__ import annotations

import os
import signal
import time

import pytest

from modelplane.localcluster.cluster import LocalCluster

pytestmark = pytest.mark.cluster


def test_up_reuses_a_running_cluster_and_replaces_a_stale_one(local_cluster: object) -> None:
    """A second `up` is fast and keeps the processes; a dead component means a fresh start."""
    cluster = LocalCluster("lifecycle-test")
    try:
        first = cluster.up(progress=lambda _: None)
        assert cluster.running()
        started = time.monotonic()
        again = cluster.up(progress=lambda _: None)
        assert time.monotonic() - started < 10
        assert [c.pid for c in again.components] == [c.pid for c in first.components]

        apiserver = next(c for c in first.components if c.name == "kube-apiserver")
        os.kill(apiserver.pid, signal.SIGKILL)
        time.sleep(0.5)  # let the kernel mark it a zombie
        assert not cluster.running()

        replaced = cluster.up(progress=lambda _: None)
        assert cluster.running()
        assert not {c.pid for c in replaced.components} & {c.pid for c in first.components}
    finally:
        cluster.down(progress=lambda _: None)
    assert not cluster.running()
    assert not cluster.state_path.exists()
    assert all(not c.alive() for c in replaced.components)
