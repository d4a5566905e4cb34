"""An operator killed (SIGKILL) at random points of promotions always reaches the right end.

One ModelStage is promoted back and forth between two verified versions, 20 times; during each
promotion the operator is killed after a random delay of 0-2 s (a seeded random, so a failure
reproduces) and started again. After every promotion the end state is checked: spec.version is
live, the Deployment serves it, Ready; `status.history` holds exactly one Succeeded entry per
promotion; and deleting the objects at the end completes (no finalizer is left stuck).
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from resilience_support import (
    MODEL,
    Objects,
    history,
    register_version,
    stage_manifest,
    wait_gone,
    wait_live,
)

pytestmark = pytest.mark.cluster

SEED = 20261122
KILLS = 20
MAX_DELAY = 2.0


def test_promotions_survive_sigkill_at_random_points(
    own_objects: Objects, make_operator: Any, s3: Any, bucket: str
) -> None:
    op = make_operator()
    client = s3.client()
    register_version(own_objects, client, bucket, 1)
    register_version(own_objects, client, bucket, 2)
    name = f"{MODEL}-production"
    own_objects.apply(stage_manifest("Production", 1))
    wait_live(own_objects, name, 1)
    expected: list[tuple[int, int | None, str]] = [(1, None, "Succeeded")]

    rng = random.Random(SEED)  # noqa: S311 - reproducible delays, not secrets
    started = time.monotonic()
    for kill in range(KILLS):
        current, target = (1, 2) if kill % 2 == 0 else (2, 1)
        delay = rng.uniform(0, MAX_DELAY)
        own_objects.patch("modelstages", name, {"spec": {"version": target}})
        time.sleep(delay)
        op.stop(kill=True)
        op.start()
        stage = wait_live(own_objects, name, target)
        expected.append((target, current, "Succeeded"))
        assert history(stage) == expected, f"kill {kill} after {delay:.2f}s"
        assert stage["status"]["previousVersion"] == current
    looped = time.monotonic() - started

    # Nothing more is written once settled, even after one more crash.
    op.stop(kill=True)
    op.start()
    time.sleep(2)
    assert history(wait_live(own_objects, name, 2 if KILLS % 2 else 1)) == expected
    assert op.alive()

    # No finalizer stuck: deleting everything completes while the operator runs.
    own_objects.delete("modelstages", name)
    for version in (1, 2):
        own_objects.delete("modelversions", f"{MODEL}-v{version}")
    wait_gone(own_objects, "modelstages", name)
    for version in (1, 2):
        wait_gone(own_objects, "modelversions", f"{MODEL}-v{version}")
    print(f"\n[timings] {KILLS} killed promotions: {looped:.1f}s")
