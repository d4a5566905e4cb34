"""Fuzzing the API through the real API server and the session operator.

Hypothesis generates ModelVersion, Run and ModelStage specs, valid-looking and edge cases
(strings at and past their length bounds, unicode, odd digests and URIs, extreme numbers,
missing optional fields). Each one is either refused by the API server's validation (400 or
422, with a message) or accepted and then reconciled by the operator within a bound
(`status.observedGeneration` of the current generation, or a Ready or Stalled condition).
The session operator serves the admission webhook, so a ModelStage can also be refused there
(403, "admission webhook ... denied": a version that is missing or fails its gates).
At the end the operator is alive and still serves: a control ModelVersion becomes Ready.
Runs are derandomized, so CI sees the same examples every time.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client as k8s
from resilience_support import (
    Objects,
    condition,
    delete_all,
    register_version,
    wait_for,
    wait_serving,
)

from modelplane.api import GROUP, VERSION

pytestmark = pytest.mark.cluster

EXAMPLES = 50
RECONCILED = 30.0
"""Bound on the operator's first reconciliation of an accepted object."""

HEX = "0123456789abcdef"


def mostly(valid: st.SearchStrategy[Any], edge: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid` three times in four, else `edge`: enough accepted objects reach the operator."""
    return st.integers(0, 3).flatmap(lambda i: edge if i == 0 else valid)


dns_labels = mostly(
    st.one_of(
        st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True), st.just("m" * 63)
    ),
    st.one_of(st.just("m" * 64), st.text(min_size=0, max_size=70)),
)
versions = mostly(
    st.integers(min_value=1, max_value=2**31 - 1),
    st.sampled_from([0, -1, 2**31, 2**53, 2**63 - 1]),
)
digests = mostly(
    st.one_of(
        st.text(HEX, min_size=64, max_size=64).map(lambda h: f"sha256:{h}"),
        st.text(HEX, min_size=32, max_size=32).map(lambda h: f"md5:{h}"),
        st.text(HEX, min_size=128, max_size=128).map(lambda h: f"sha512:{h}"),
    ),
    st.one_of(
        st.sampled_from(["", "sha256:", "SHA256:" + "a" * 64, "sha256:" + "A" * 64, "crc32:12"]),
        st.text(max_size=140),
    ),
)
uris = mostly(
    st.one_of(
        st.sampled_from(["s3://models/a/model.bin", "gs://b/k", "file:///etc/passwd"]),
        st.text(min_size=1, max_size=40).map(lambda t: f"s3://fuzz/{t}"),
        st.just("s3://b/" + "k" * 1017),
    ),
    st.one_of(st.just("s3://"), st.just("s3://b/" + "k" * 1018), st.text(max_size=60)),
)
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
names = st.one_of(st.text(min_size=1, max_size=30), st.just("n" * 250), st.just("n" * 251))


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def model_versions(draw: st.DrawFn) -> dict[str, Any]:
    model, version = draw(dns_labels), draw(versions)
    spec: dict[str, Any] = {
        "model": model,
        "version": version,
        "artifact": {"uri": draw(uris), "digest": draw(digests)},
    }
    for key, value in (
        ("run", draw(optional(dns_labels))),
        ("flavor", draw(optional(st.sampled_from(["sklearn", "x" * 63, "x" * 64, "Ünï"])))),
        ("description", draw(optional(st.text(max_size=300)))),
    ):
        if value is not None:
            spec[key] = value
    return {
        "kind": "ModelVersion",
        "plural": "modelversions",
        "name": f"{model}-v{version}",
        "spec": spec,
    }


@st.composite
def runs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"experiment": draw(dns_labels)}
    params = draw(optional(st.dictionaries(names, st.text(max_size=501), max_size=4)))
    if params is not None:
        spec["params"] = params
    if draw(st.booleans()):
        spec["code"] = {
            "repository": draw(st.sampled_from(["https://git.example.com/x.git", "nope", ""])),
            "commit": draw(st.one_of(st.text(HEX, min_size=40, max_size=40), st.text(max_size=41))),
        }
    if draw(st.booleans()):
        spec["data"] = [{"name": draw(names), "uri": draw(uris), "digest": draw(digests)}]
    tags = draw(optional(st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=3)))
    if tags is not None:
        spec["tags"] = tags
    return {"kind": "Run", "plural": "runs", "name": None, "spec": spec}


@st.composite
def model_stages(draw: st.DrawFn) -> dict[str, Any]:
    model = draw(dns_labels)
    stage = draw(st.one_of(st.sampled_from(["Staging", "Production", "champion"]), names))
    spec: dict[str, Any] = {"model": model, "stage": stage, "version": draw(versions)}
    if draw(st.booleans()):
        spec["gates"] = {
            "metrics": [
                {
                    "name": draw(names),
                    "op": draw(st.sampled_from([">=", ">", "<=", "<", "==", "~"])),
                    "value": draw(numbers),
                }
            ]
        }
    if draw(st.booleans()):
        spec["serving"] = {
            "replicas": draw(st.integers(min_value=-1, max_value=1001)),
            "template": {"spec": {"containers": [{"name": "s", "image": draw(names)}]}},
        }
    name = f"{model}-{stage.lower()}" if isinstance(stage, str) else "x"
    return {"kind": "ModelStage", "plural": "modelstages", "name": name, "spec": spec}


def reconciled(obj: dict[str, Any] | None) -> bool:
    if obj is None:
        return False
    status = obj.get("status") or {}
    if status.get("observedGeneration") == obj["metadata"]["generation"]:
        return True
    return condition(obj, "Ready") is not None or condition(obj, "Stalled") is not None


def test_generated_specs_are_refused_or_reconciled(
    cluster: Any, namespace: str, operator: Any, s3: Any, bucket: str
) -> None:
    objects = Objects(cluster, namespace)
    print(f"\n[timings] the session operator serves after {wait_serving(objects):.1f}s")
    counter = itertools.count()
    outcomes = {"refused": 0, "reconciled": 0, "existing": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(st.one_of(model_versions(), runs(), model_stages()))
    def check(case: dict[str, Any]) -> None:
        name = case["name"] or f"fuzz-run-{next(counter)}"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": case["kind"],
            "metadata": {"name": name},
            "spec": case["spec"],
        }
        refused: k8s.ApiException | None = None
        try:
            objects.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, case["plural"], body
            )
        except k8s.ApiException as error:
            refused = error
        if refused is not None and refused.status != 409:
            message = json.loads(refused.body).get("message") or ""
            # 400/422: the schema and CEL rules; 403: the admission webhook (its gates).
            admission = refused.status == 403 and "admission webhook" in message
            assert refused.status in (400, 422) or admission, (refused.status, message, body)
            assert message, refused.body
            outcomes["refused"] += 1
            return
        # 409: the same name was generated before; that object is checked again.
        outcomes["existing" if refused is not None else "reconciled"] += 1
        wait_for(
            lambda: reconciled(objects.get(case["plural"], name)),
            RECONCILED,
            f"{case['kind']} {name} reconciled",
        )
        assert operator.alive(), operator.log()[-3000:]

    check()
    assert operator.alive(), operator.log()[-3000:]
    print(f"\n[fuzzing] {outcomes}")
    # The operator still serves: a control object created at the end is verified.
    register_version(objects, s3.client(), bucket, 1)
    delete_all(objects)
