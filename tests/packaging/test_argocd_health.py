"""The Argo CD health check (manifests/gitops/argocd/health.lua) on sample objects.

Argo CD runs health scripts in gopher-lua, a Lua 5.1, with the object as the global `obj`;
the script returns a table {status, message}. The tests do the same with Debian's lua5.1 and
lua5.4, feeding the object as a Lua table literal.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from modelplane.core.conditions import Reason

from .conftest import MANIFESTS, Tools, one

SCRIPT = MANIFESTS / "gitops" / "argocd" / "health.lua"
KINDS = ("Experiment", "Run", "ModelVersion", "ModelStage")


def lua_literal(value: Any) -> str:
    """A Python value as a Lua expression (None becomes nil, dropping the key)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, Mapping):
        return (
            "{"
            + ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list | tuple):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    raise TypeError(f"no Lua literal for {value!r}")


def health(lua: Path, tools: Tools, obj: Mapping[str, Any]) -> tuple[str, str]:
    """(status, message) that the script returns for `obj` under the interpreter `lua`."""
    program = (
        f"obj = {lua_literal(obj)}\n"
        f"local hs = (function()\n{SCRIPT.read_text()}\nend)()\n"
        'io.write(hs.status, "\\n", hs.message)\n'
    )
    status, _, message = tools.run(lua, "-", input=program).partition("\n")
    return status, message


def condition(type_: str, status: str, reason: str, message: str = "", **extra: Any) -> Any:
    return {"type": type_, "status": status, "reason": reason, "message": message, **extra}


def obj(
    kind: str, *conditions: Any, generation: int = 2, observed: int | None = 2, status: bool = True
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "modelplane.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ml", "generation": generation},
    }
    if status:
        body["status"] = {"observedGeneration": observed, "conditions": list(conditions)}
    return body


READY = condition("Ready", "True", Reason.RECONCILED, "all good", observedGeneration=2)

CASES = [
    # (object, expected status, expected message or a part of it)
    (obj("ModelVersion", status=False), "Progressing", "Waiting for the operator"),
    (obj("ModelVersion", READY, observed=1), "Progressing", "observe generation 2"),
    (obj("ModelVersion", READY, observed=None), "Progressing", "observe generation 2"),
    (obj("Experiment"), "Progressing", "Waiting for the Ready condition"),
    (obj("Experiment", READY), "Healthy", "Reconciled: all good"),
    (obj("Run", READY), "Healthy", "Reconciled"),
    (
        obj("Run", condition("Ready", "True", Reason.RUN_FAILED, "phase Failed")),
        "Healthy",
        "Failed: phase Failed",
    ),
    (
        obj("ModelStage", {**READY, "observedGeneration": 1}),
        "Progressing",
        "Ready of generation 2",
    ),
    (
        obj(
            "ModelVersion",
            condition("Ready", "False", Reason.VERIFYING, "verifying"),
            condition("Reconciling", "True", Reason.VERIFYING, "checking the artifact"),
        ),
        "Progressing",
        "Verifying: checking the artifact",
    ),
    (
        obj(
            "ModelVersion",
            condition("Ready", "False", Reason.DIGEST_MISMATCH, "expected a got b"),
            condition("Stalled", "True", Reason.DIGEST_MISMATCH, "expected a got b"),
        ),
        "Degraded",
        "DigestMismatch: expected a got b",
    ),
    (
        obj("ModelVersion", condition("Ready", "False", Reason.ARTIFACT_NOT_FOUND, "no object")),
        "Degraded",
        "ArtifactNotFound",
    ),
    (
        obj("ModelVersion", condition("Ready", "False", Reason.STORE_UNREACHABLE, "timeout")),
        "Progressing",
        "StoreUnreachable",
    ),
    (
        obj("Run", condition("Ready", "False", Reason.EXPERIMENT_NOT_FOUND, "no churn")),
        "Degraded",
        "ExperimentNotFound: no churn",
    ),
    (
        obj("ModelStage", condition("Ready", "False", Reason.GATE_FAILED, "auc 0.79 < 0.82")),
        "Degraded",
        "GateFailed",
    ),
    (
        obj("ModelStage", condition("Ready", "False", Reason.AWAITING_APPROVAL, "0 of 1")),
        "Suspended",
        "AwaitingApproval: 0 of 1",
    ),
    (
        obj("ModelStage", condition("Ready", "False", Reason.ROLLOUT_PROGRESSING, "1 of 2")),
        "Progressing",
        "RolloutProgressing",
    ),
    (
        obj(
            "ModelStage",
            condition("Ready", "False", Reason.PROGRESS_DEADLINE_EXCEEDED, "pods never Ready"),
        ),
        "Degraded",
        "ProgressDeadlineExceeded",
    ),
    (
        obj("ModelStage", condition("Ready", "False", Reason.ROLLED_BACK, "back to v2")),
        "Degraded",
        "RolledBack: back to v2",
    ),
    # Stalled wins over Reconciling; a reason terminal for one kind is not for another.
    (
        obj(
            "ModelStage",
            condition("Ready", "False", Reason.GATE_FAILED),
            condition("Reconciling", "True", Reason.PROGRESSING),
            condition("Stalled", "True", Reason.GATE_FAILED, "gate failed"),
        ),
        "Degraded",
        "GateFailed: gate failed",
    ),
    (
        obj("Experiment", condition("Ready", "False", Reason.GATE_FAILED)),
        "Progressing",
        "GateFailed",
    ),
    (obj("Run", condition("Ready", "Unknown", Reason.PROGRESSING)), "Progressing", "Progressing"),
]


@pytest.mark.parametrize("interpreter", ["lua5.1", "lua5.4"])
@pytest.mark.parametrize(("sample", "status", "message"), CASES)
def test_health_of_sample_objects(
    tools: Tools, interpreter: str, sample: dict[str, Any], status: str, message: str
) -> None:
    lua = tools.lua51 if interpreter == "lua5.1" else tools.lua
    got = health(lua, tools, sample)
    assert got[0] == status, got
    assert message in got[1], got


def test_generation_as_a_float_compares_like_an_integer(tools: Tools) -> None:
    """gopher-lua reads JSON numbers as floats: 2.0 observed of generation 2 is current."""
    sample = obj("Run", READY)
    sample["metadata"]["generation"] = 2.0
    sample["status"]["observedGeneration"] = 2.0
    for lua in (tools.lua51, tools.lua):
        assert health(lua, tools, sample)[0] == "Healthy"
    sample["metadata"]["generation"] = 3.0
    assert health(tools.lua51, tools, sample) == (
        "Progressing",
        "Waiting for the operator to observe generation 3",
    )


def _lua_reasons(table: str) -> dict[str, set[str]]:
    """{kind: reasons} of one of the script's reason tables (`terminal` or `waiting`)."""
    text = SCRIPT.read_text()
    body = re.search(rf"^local {table} = \{{\n(.*?)^\}}", text, re.MULTILINE | re.DOTALL)
    assert body is not None
    found: dict[str, set[str]] = {}
    for kind, entries in re.findall(r"(\w+) = \{(.*?)\}", body.group(1), re.DOTALL):
        found[kind] = set(re.findall(r"(\w+) = true", entries))
    return found


# Reasons that never mean Degraded or Suspended: they go with Ready=True, or with work under way.
NOT_BLOCKING = {
    Reason.RECONCILED,
    Reason.PROGRESSING,
    Reason.RECONCILE_ERROR,
    Reason.RUN_RUNNING,
    Reason.RUN_FINISHED,
    Reason.RUN_FAILED,
    Reason.RUN_KILLED,
    Reason.HEARTBEAT_LOST,
    Reason.LINEAGE_RECORDED,
    Reason.VERIFYING,
    Reason.ARTIFACT_VERIFIED,
    Reason.STORE_UNREACHABLE,
    Reason.VERSION_NOT_READY,
    Reason.GATES_PASSED,
    Reason.ROLLOUT_PROGRESSING,
    Reason.ROLLOUT_COMPLETE,
    Reason.NO_SERVING,
}


def test_every_reason_the_operator_writes_is_classified() -> None:
    """The script's reasons exist in modelplane.core.conditions, and every Reason there is
    either in the script or listed above as not blocking: a new reason needs a decision."""
    terminal = _lua_reasons("terminal")
    waiting = _lua_reasons("waiting")
    assert set(terminal) == set(KINDS)
    in_script = set().union(*terminal.values(), *waiting.values())
    known = {str(reason) for reason in Reason}
    assert in_script - known == set()
    assert known - in_script - {str(r) for r in NOT_BLOCKING} == set()


def test_component_adds_the_script_to_argocd_cm(tools: Tools, tmp_path: Path) -> None:
    """The kustomize Component merges one key per kind, each the script, into argocd-cm."""
    (tmp_path / "argocd-cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\n"
        "data:\n  url: https://argocd.example.com\n"
    )
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [argocd-cm.yaml]\n"
        # kustomize takes relative paths only.
        f"components: [{os.path.relpath(MANIFESTS / 'gitops' / 'argocd', tmp_path)}]\n"
    )
    config = one(tools.kustomize_build(tmp_path), "ConfigMap", "argocd-cm")
    assert config["metadata"]["namespace"] == "argocd"
    assert config["data"].pop("url") == "https://argocd.example.com"
    assert config["data"] == {
        f"resource.customizations.health.modelplane.io_{kind}": SCRIPT.read_text() for kind in KINDS
    }
