"""The ModelStage admission webhooks against a real API server, RBAC users and the operator.

The session's operator serves its webhooks (`MODELPLANE_WEBHOOK=local`). Users authenticate
with client certificates: alice promotes (and may approve, so that refusing her own approval is
about the requester rule, not RBAC), bob and carol approve, dave and mallory may edit
ModelStages but not approve. ModelVersions are real: their artifacts are uploaded to MinIO and
verified by the operator; their metrics come from the lineage of finished Runs.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from tests.waiting import wait_for

from modelplane.api import GROUP, VERSION, ModelStage
from modelplane.core.approvals import (
    REQUESTED_BY_ANNOTATION,
    approval_key,
    approvals_of,
    encode_approval,
)
from modelplane.core.gates import GateInputs, evaluate_gates

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
APPROVERS_RBAC = REPO / "examples" / "rbac" / "approvers.yaml"
MODEL = "churn"
STAGE = f"{MODEL}-production"
GATES = {"metrics": [{"name": "test_auc", "op": ">=", "value": 0.82}], "approvals": {"required": 2}}
EDITOR_ROLE = "modelplane-test-stage-editor"
ENGINEERS, APPROVERS = "ml-engineers", "ml-approvers"
USERS = {
    "alice": (ENGINEERS, APPROVERS),
    "bob": (APPROVERS,),
    "carol": (APPROVERS,),
    "dave": (ENGINEERS,),
    "mallory": (ENGINEERS,),
}
# Verification happens on the operator's first look at a ModelVersion.
TIMEOUT = 45


def configured(api_client: Any) -> bool:
    """Whether the operator's three webhooks are in the modelplane.io configurations."""
    admission = k8s.AdmissionregistrationV1Api(api_client)
    try:
        validating = admission.read_validating_webhook_configuration("modelplane.io")
        mutating = admission.read_mutating_webhook_configuration("modelplane.io")
    except k8s.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    names = {w.name for w in (validating.webhooks or []) + (mutating.webhooks or [])}
    return names >= {"gates.modelplane.io", "identity.modelplane.io", "stamp.modelplane.io"}


@pytest.fixture(scope="module")
def webhooks(cluster: Any, operator: Any) -> None:
    """The session's operator has configured its webhooks (it runs with MODELPLANE_WEBHOOK)."""
    wait_for(
        lambda: configured(cluster.api_client()),
        timeout=30,
        message="the modelplane.io webhook configurations (is the operator run with "
        "MODELPLANE_WEBHOOK=local?)",
    )


def approver_cluster_role() -> dict[str, Any]:
    """The ClusterRole of examples/rbac/approvers.yaml: the tests grant exactly what it says."""
    documents = yaml.safe_load_all(APPROVERS_RBAC.read_text())
    role: dict[str, Any] = next(doc for doc in documents if doc["kind"] == "ClusterRole")
    return role


@pytest.fixture(scope="module")
def kubeconfigs(cluster: Any) -> dict[str, Path]:
    """A kubeconfig per user, and the cluster roles their bindings refer to."""
    approver_role = next(
        doc
        for doc in yaml.safe_load_all(APPROVERS_RBAC.read_text())
        if doc["kind"] == "ClusterRole"
    )
    editor_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": EDITOR_ROLE},
        "rules": [
            {
                "apiGroups": [GROUP],
                "resources": ["modelstages", "modelversions"],
                "verbs": ["get", "list", "watch", "create", "update", "patch"],
            }
        ],
    }
    for role in (approver_role, editor_role):
        cluster.kubectl("apply", "-f", "-", input=json.dumps(role))
    return {user: cluster.user_kubeconfig(user, groups) for user, groups in USERS.items()}


@pytest.fixture
def rbac(cluster: Any, namespace: str, kubeconfigs: dict[str, Path]) -> dict[str, Path]:
    """Engineers may edit ModelStages in the namespace; approvers may approve them."""
    approver_role = approver_cluster_role()["metadata"]["name"]
    for group, role in ((ENGINEERS, EDITOR_ROLE), (APPROVERS, approver_role)):
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": group, "namespace": namespace},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
        }
        cluster.kubectl("apply", "-f", "-", input=json.dumps(binding))
    # The authorizer learns of new bindings through a watch: wait until it answers yes.
    for user, verb in (("bob", "approve"), ("carol", "approve"), ("alice", "patch")):
        wait_for(
            lambda user=user, verb=verb: can_i(cluster, namespace, user, verb),
            timeout=10,
            message=f"RBAC lets {user} {verb} modelstages",
        )
    return kubeconfigs


def can_i(cluster: Any, namespace: str, user: str, verb: str) -> bool:
    result = cluster.kubectl(
        "auth",
        "can-i",
        verb,
        f"modelstages.{GROUP}",
        "-n",
        namespace,
        f"--as={user}",
        *(f"--as-group={group}" for group in USERS[user]),
        check=False,
    )
    return result.stdout.strip() == "yes"


class Cluster:
    """The test namespace's objects, as the admin and as users."""

    def __init__(self, cluster: Any, namespace: str, kubeconfigs: dict[str, Path]) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.kubeconfigs = kubeconfigs
        self.custom = k8s.CustomObjectsApi(cluster.api_client())

    def kubectl(self, user: str | None, *args: str, input: str | None = None) -> Any:
        kubeconfig = self.kubeconfigs[user] if user else None
        return self.cluster.kubectl(
            "-n", self.namespace, *args, input=input, kubeconfig=kubeconfig, check=False
        )

    def create(self, plural: str, body: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, body)

    def get(self, plural: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name
        )
        return obj

    def condition(self, plural: str, name: str, type_: str) -> str | None:
        conditions = self.get(plural, name).get("status", {}).get("conditions", [])
        return next((c["status"] for c in conditions if c["type"] == type_), None)

    # -- the ModelStage --------------------------------------------------------------------

    def apply_stage(
        self, user: str | None, version: int, annotations: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`kubectl apply` of the stage at `version`, as `user` (None: the admin)."""
        metadata: dict[str, Any] = {"name": STAGE}
        if annotations:
            metadata["annotations"] = annotations
        manifest = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelStage",
            "metadata": metadata,
            "spec": {"model": MODEL, "stage": "Production", "version": version, "gates": GATES},
        }
        result: subprocess.CompletedProcess[str] = self.kubectl(
            user, "apply", "-f", "-", input=json.dumps(manifest)
        )
        return result

    def annotate(self, user: str, key: str, value: str | None) -> subprocess.CompletedProcess[str]:
        """Set (or with None, remove) an annotation of the stage, as `user`."""
        change = f"{key}-" if value is None else f"{key}={value}"
        result: subprocess.CompletedProcess[str] = self.kubectl(
            user, "annotate", "modelstage", STAGE, change, "--overwrite"
        )
        return result

    def approve(self, user: str, version: int, *, as_user: str | None = None) -> Any:
        """`as_user` (default `user`) writes an approval of `version` in `user`'s name."""
        key, value = encode_approval(user, version, comment=f"{user} approves")
        return self.annotate(as_user or user, key, value)

    def stage(self) -> ModelStage:
        return ModelStage.from_object(self.get("modelstages", STAGE))

    def annotations(self) -> dict[str, str]:
        return dict(self.stage().metadata.annotations or {})


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def register(
    kube: Cluster, s3: Any, bucket: str, version: int, test_auc: float, *, corrupt: bool = False
) -> str:
    """A finished Run with `test_auc`, and a ModelVersion of its artifact, stored in MinIO."""
    run = f"train-{version}"
    kube.create(
        "runs",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Run",
            "metadata": {"name": run},
            "spec": {"experiment": "churn-prediction", "params": {"seed": str(version)}},
        },
    )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    summary = {"last": test_auc, "step": 1, "min": test_auc, "max": test_auc, "count": 1}
    kube.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        kube.namespace,
        "runs",
        run,
        {
            "status": {
                "phase": "Finished",
                "startTime": now,
                "endTime": now,
                "metrics": {"test_auc": summary},
            }
        },
    )
    data = f"model {version}".encode()
    key = f"{MODEL}/{version}/model.pkl"
    s3.client().put_object(Bucket=bucket, Key=key, Body=data)
    name = f"{MODEL}-v{version}"
    kube.create(
        "modelversions",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": name},
            "spec": {
                "model": MODEL,
                "version": version,
                "run": run,
                "artifact": {
                    "uri": f"s3://{bucket}/{key}",
                    "digest": sha256(b"something else" if corrupt else data),
                },
            },
        },
    )
    return name


@pytest.fixture
def kube(
    *,
    cluster: Any,
    namespace: str,
    rbac: dict[str, Path],
    webhooks: None,
    operator: Any,
    s3: Any,
    bucket: str,
) -> Iterator[Cluster]:
    """Versions 1 (test_auc 0.90), 2 (0.79), 3 (unverified) and 4 (0.85); the stage at 1."""
    kube = Cluster(cluster, namespace, rbac)
    ready = [register(kube, s3, bucket, 1, 0.90), register(kube, s3, bucket, 2, 0.79)]
    ready.append(register(kube, s3, bucket, 4, 0.85))
    unverified = register(kube, s3, bucket, 3, 0.90, corrupt=True)
    for name in ready:
        wait_for(
            lambda name=name: kube.condition("modelversions", name, "Ready") == "True",
            timeout=TIMEOUT,
            message=f"{name} Ready",
        )
    wait_for(
        lambda: kube.condition("modelversions", unverified, "ArtifactVerified") == "False",
        timeout=TIMEOUT,
        message=f"{unverified} ArtifactVerified=False",
    )
    created = kube.apply_stage(None, 1)
    assert created.returncode == 0, created.stderr
    yield kube
    assert operator.alive(), f"the operator died:\n{operator.log()[-3000:]}"


def denied(result: subprocess.CompletedProcess[str], webhook: str) -> str:
    """The denial message of `webhook`, asserting that the command was denied by it."""
    assert result.returncode != 0, f"expected a denial, got: {result.stdout}"
    assert f'admission webhook "{webhook}.modelplane.io" denied the request' in result.stderr
    return result.stderr


# -- gates ---------------------------------------------------------------------------------


def test_denies_a_promotion_to_a_version_that_fails_a_metric_gate(kube: Cluster) -> None:
    """The message names the gate and the observed value, and the stage keeps its version."""
    message = denied(kube.apply_stage("alice", 2), "gates")
    assert "gate test_auc >= 0.82 failed: observed 0.79 (version 2)" in message
    assert kube.stage().spec.version == 1


def test_denies_a_promotion_to_a_version_that_does_not_exist(kube: Cluster) -> None:
    message = denied(kube.apply_stage("alice", 9), "gates")
    assert "version 9 of churn does not exist: no ModelVersion churn-v9 in namespace " in message
    assert kube.stage().spec.version == 1


def test_denies_a_promotion_to_a_version_whose_artifact_is_not_verified(kube: Cluster) -> None:
    message = denied(kube.apply_stage("alice", 3), "gates")
    assert "version 3 of churn cannot be promoted" in message
    assert "ArtifactVerified=False, DigestMismatch" in message
    assert kube.stage().spec.version == 1


def test_admits_a_passing_version_and_stamps_who_requested_it(kube: Cluster) -> None:
    """requested-by is the authenticated user, whatever the manifest says; approvals warn."""
    result = kube.apply_stage("alice", 4, annotations={REQUESTED_BY_ANNOTATION: "bob"})
    assert result.returncode == 0, result.stderr
    assert "gate approvals >= 2 failed: observed 0" in result.stderr  # a warning, not a denial
    assert kube.stage().spec.version == 4
    assert kube.annotations()[REQUESTED_BY_ANNOTATION] == "alice"


def test_a_change_that_keeps_the_version_keeps_the_requester(kube: Cluster) -> None:
    assert kube.apply_stage("alice", 4).returncode == 0
    result = kube.annotate("dave", "team", "growth")
    assert result.returncode == 0, result.stderr
    assert kube.annotations()[REQUESTED_BY_ANNOTATION] == "alice"


def test_leaves_namespaces_the_operator_does_not_watch_alone(
    cluster: Any, unmanaged_namespace: str, webhooks: None
) -> None:
    """The session operator skips unmanaged-*: no gates, no stamp, whatever the version."""
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelStage",
        "metadata": {"name": STAGE, "annotations": {REQUESTED_BY_ANNOTATION: "someone"}},
        "spec": {"model": MODEL, "stage": "Production", "version": 9, "gates": GATES},
    }
    created = cluster.kubectl(
        "-n", unmanaged_namespace, "apply", "-f", "-", input=json.dumps(manifest), check=False
    )
    assert created.returncode == 0, created.stderr
    stage = ModelStage.from_object(
        k8s.CustomObjectsApi(cluster.api_client()).get_namespaced_custom_object(
            GROUP, VERSION, unmanaged_namespace, "modelstages", STAGE
        )
    )
    assert (stage.metadata.annotations or {})[REQUESTED_BY_ANNOTATION] == "someone"


# -- approvals -----------------------------------------------------------------------------


def test_approvals_by_two_other_users_are_admitted_and_pass_the_gate(kube: Cluster) -> None:
    assert kube.apply_stage("alice", 4).returncode == 0
    for approver in ("bob", "carol"):
        result = kube.approve(approver, 4)
        assert result.returncode == 0, result.stderr

    annotations = kube.annotations()
    approvals = approvals_of(annotations, version=4)
    assert [a.user for a in approvals] == ["bob", "carol"]
    assert all(a.comment == f"{a.user} approves" for a in approvals)
    stamped = json.loads(annotations[approval_key("bob")])["at"]
    assert abs((datetime.fromisoformat(stamped) - datetime.now(UTC)).total_seconds()) < 60

    stage = kube.stage()
    inputs = GateInputs(
        version=4,
        metrics={"test_auc": 0.85},
        other_stages={},
        approvals=approvals_of(annotations),
        requested_by=annotations[REQUESTED_BY_ANNOTATION],
        now=datetime.now(UTC),
    )
    assert [(r.name, r.passed) for r in evaluate_gates(stage.spec.gates, inputs)] == [
        ("test_auc", True),
        ("approvals", True),
    ]


def test_the_operator_holds_a_promotion_until_two_others_approve(kube: Cluster) -> None:
    """Approvals are read back from the annotations into status, and then the version goes live."""

    def status() -> dict[str, Any]:
        found: dict[str, Any] = kube.get("modelstages", STAGE).get("status") or {}
        return found

    assert kube.apply_stage("alice", 4).returncode == 0
    wait_for(
        lambda: status().get("gatesVersion") == 4 and status().get("gatesSummary") == "1/2",
        timeout=TIMEOUT,
        message="version 4 held for approvals",
    )
    assert status().get("liveVersion") is None
    assert kube.approve("bob", 4).returncode == 0
    wait_for(
        lambda: [a["user"] for a in status().get("approvals") or []] == ["bob"],
        timeout=TIMEOUT,
        message="bob's approval in status",
    )
    assert status().get("liveVersion") is None
    assert kube.approve("carol", 4).returncode == 0
    wait_for(lambda: status().get("liveVersion") == 4, timeout=TIMEOUT, message="v4 live")
    assert status()["gatesSummary"] == "2/2"
    assert [a["user"] for a in status()["approvals"]] == ["bob", "carol"]


def test_an_approver_may_withdraw_their_own_approval(kube: Cluster) -> None:
    assert kube.apply_stage("alice", 4).returncode == 0
    assert kube.approve("bob", 4).returncode == 0
    result = kube.annotate("bob", approval_key("bob"), None)
    assert result.returncode == 0, result.stderr
    assert approval_key("bob") not in kube.annotations()


def test_refuses_a_self_approval(kube: Cluster) -> None:
    """alice holds the approve verb, but she requested version 4."""
    assert kube.apply_stage("alice", 4).returncode == 0
    message = denied(kube.approve("alice", 4), "identity")
    assert "'alice' requested version 4 and cannot approve their own change" in message
    assert approval_key("alice") not in kube.annotations()


def test_refuses_an_approval_by_a_user_without_the_approve_verb(kube: Cluster) -> None:
    assert kube.apply_stage("alice", 4).returncode == 0
    message = denied(kube.approve("dave", 4), "identity")
    assert f"'dave' may not approve ModelStage {kube.namespace}/{STAGE}" in message
    assert "'approve'" in message
    assert approval_key("dave") not in kube.annotations()


def test_refuses_forging_another_users_approval(kube: Cluster) -> None:
    assert kube.apply_stage("alice", 4).returncode == 0
    # Under bob's key, in bob's name.
    message = denied(kube.approve("bob", 4, as_user="mallory"), "identity")
    assert "'mallory' cannot write an approval in the name of 'bob'" in message
    # Under mallory's own key, in bob's name.
    _, value = encode_approval("bob", 4)
    message = denied(kube.annotate("mallory", approval_key("mallory"), value), "identity")
    assert "does not belong to user 'bob'" in message
    # An approver cannot forge either.
    message = denied(kube.approve("bob", 4, as_user="carol"), "identity")
    assert "'carol' cannot write an approval in the name of 'bob'" in message
    assert approvals_of(kube.annotations()) == []


def test_refuses_an_approval_of_another_version_than_the_desired_one(kube: Cluster) -> None:
    assert kube.apply_stage("alice", 4).returncode == 0
    message = denied(kube.approve("bob", 2), "identity")
    assert "the approval is for version 2, but spec.version is 4" in message


def test_refuses_hand_edits_of_requested_by(kube: Cluster) -> None:
    assert kube.apply_stage("alice", 4).returncode == 0
    message = denied(kube.annotate("alice", REQUESTED_BY_ANNOTATION, "mallory"), "identity")
    assert f"annotation {REQUESTED_BY_ANNOTATION} is set by modelplane" in message
    denied(kube.annotate("bob", REQUESTED_BY_ANNOTATION, None), "identity")
    assert kube.annotations()[REQUESTED_BY_ANNOTATION] == "alice"


# -- failure policy ------------------------------------------------------------------------


def serving(kube: Cluster) -> bool:
    """Whether the webhooks are configured and answer: a dry run of a harmless write passes."""
    if not configured(kube.cluster.api_client()):
        return False
    result = kube.kubectl(
        "alice", "annotate", "modelstage", STAGE, "probe=1", "--overwrite", "--dry-run=server"
    )
    return bool(result.returncode == 0)


def test_approvals_and_promotions_are_refused_while_the_webhooks_are_down(
    kube: Cluster, operator: Any
) -> None:
    """The requested-by and approval webhooks fail closed: a crashed operator blocks writes."""
    assert kube.apply_stage("alice", 4).returncode == 0
    operator.stop(kill=True)
    try:
        approval = kube.approve("bob", 4)
        promotion = kube.apply_stage("alice", 1)
    finally:
        operator.start()
    for result in (approval, promotion):
        assert result.returncode != 0
        assert 'failed calling webhook "stamp.modelplane.io"' in result.stderr
    wait_for(lambda: serving(kube), timeout=30, message="the webhooks serving again")
    assert kube.approve("bob", 4).returncode == 0
    assert kube.stage().spec.version == 4


def test_a_clean_stop_in_local_mode_removes_the_webhook_configurations(
    kube: Cluster, operator: Any
) -> None:
    """Nothing will serve 127.0.0.1:<port> again, so leaving them would block every write."""
    admission = k8s.AdmissionregistrationV1Api(kube.cluster.api_client())
    operator.stop()
    try:
        for read in (
            admission.read_validating_webhook_configuration,
            admission.read_mutating_webhook_configuration,
        ):
            with pytest.raises(k8s.ApiException) as error:
                read("modelplane.io")
            assert error.value.status == 404
        assert kube.annotate("alice", "team", "growth").returncode == 0
    finally:
        operator.start()
    wait_for(lambda: serving(kube), timeout=30, message="the webhooks serving again")
