"""The demo's story, step by step, against a real cluster, operator and S3 store.

1. train a real model as a sweep of nested runs and register the best one;
2. promote it to Staging, then through the Production gate, and watch the Deployment roll;
3. register a model trained on the wrong feature and see the gate deny its promotion;
4. promote a version whose pods never become Ready and see the automatic rollback;
5. end with `kubectl get modelstages` and `modelplane lineage`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s

from modelplane.api import GROUP, VERSION
from modelplane.demo import training
from modelplane.demo.narration import DemoError, Narrator
from modelplane.localcluster.cluster import NEVER_READY_LABEL
from modelplane.localcluster.processes import wait_until
from modelplane.sdk import ActiveRun, Client
from modelplane.store import digest_bytes, open_store

MODEL = "cancer-classifier"
EXPERIMENT = "cancer-diagnosis"
DATA_URI = "s3://datasets/breast-cancer/data.csv"
ARTIFACT_ROOT = "s3://mlruns"
SERVING_IMAGE = "registry.example.com/cancer-serve:1.4.2"
SWEEP = [
    {"n_estimators": 30, "max_depth": 1, "learning_rate": 0.3},
    {"n_estimators": 50, "max_depth": 2, "learning_rate": 0.1},
    {"n_estimators": 100, "max_depth": 3, "learning_rate": 0.05},
]
STAGE_GATES = {
    "Staging": {"metrics": [{"name": "test_auc", "op": ">=", "value": 0.95}]},
    "Production": {
        "metrics": [{"name": "test_auc", "op": ">=", "value": 0.97}],
        "requireStage": {"name": "Staging"},
    },
}
WAIT = 120.0


@dataclass
class Demo:
    """The demo's handles: where it runs and what it runs with."""

    narrator: Narrator
    namespace: str
    api_client: Any
    sdk: Client

    # -- helpers ---------------------------------------------------------------------------

    def stage(self, stage: str) -> dict[str, Any]:
        obj: dict[str, Any] = k8s.CustomObjectsApi(self.api_client).get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "modelstages", f"{MODEL}-{stage.lower()}"
        )
        return obj

    def wait_stage(self, stage: str, what: str, check: Callable[[dict[str, Any]], bool]) -> None:
        def holds() -> bool:
            return check(self.stage(stage).get("status") or {})

        try:
            wait_until(what, holds, WAIT)
        except TimeoutError as error:
            status = json.dumps(self.stage(stage).get("status"), indent=2)
            raise DemoError(f"{error}\nstatus of {stage}: {status}") from None

    def apply_stage(
        self, stage: str, version: int, *, never_ready: bool = False, check: bool = True
    ) -> str:
        """`kubectl apply` a ModelStage manifest, as a person or GitOps would."""
        labels = {"app": MODEL, "stage": stage.lower()}
        if never_ready:
            labels[NEVER_READY_LABEL] = "true"
        manifest = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelStage",
            "metadata": {"name": f"{MODEL}-{stage.lower()}", "namespace": self.namespace},
            "spec": {
                "model": MODEL,
                "stage": stage,
                "version": version,
                "gates": STAGE_GATES[stage],
                "serving": {
                    "replicas": 2,
                    "progressDeadlineSeconds": 10,
                    "rollback": "automatic",
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [
                                {
                                    "name": "serve",
                                    "image": SERVING_IMAGE,
                                    "ports": [{"containerPort": 8080}],
                                }
                            ]
                        },
                    },
                },
            },
        }
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{MODEL}-{stage.lower()}.yaml"
            path.write_text(yaml.safe_dump(manifest, sort_keys=False))
            self.narrator.say(f"{path.name}: {stage} -> version {version}")
            result = self.narrator.kubectl_run("apply", "-f", str(path), check=check)
        return result.stdout + result.stderr

    def served_version(self, stage: str) -> str:
        deployment = k8s.AppsV1Api(self.api_client).read_namespaced_deployment(
            f"{MODEL}-{stage.lower()}", self.namespace
        )
        env = {e.name: e.value for e in deployment.spec.template.spec.containers[0].env or []}
        return str(env.get("MODEL_VERSION"))

    # -- the story -------------------------------------------------------------------------

    def train_and_register(self) -> list[tuple[str, training.Trained]]:
        n = self.narrator
        n.step(
            "Train a real model: a sweep of nested runs",
            "each child run's params, val_auc curve and test_auc; the parent groups them",
        )
        splits = training.load_splits()
        store = open_store(DATA_URI)
        store.put_bytes(splits.csv, DATA_URI)
        data_digest = str(digest_bytes(splits.csv))
        n.say(f"data set stored at {DATA_URI} ({data_digest[:19]}...)")
        self.sdk.set_experiment(EXPERIMENT, "val_auc", "maximize")
        results: list[tuple[str, training.Trained]] = []
        with self.sdk.start_run(EXPERIMENT, "sweep") as sweep:
            sweep.log_params({"search": "grid", "candidates": len(SWEEP)})
            for index, params in enumerate(SWEEP, start=1):
                name = f"sweep-trial-{index}"
                with self.sdk.start_run(EXPERIMENT, name, parent=sweep.name) as run:
                    trained = self._train_one(run, splits, params, data_digest)
                results.append((name, trained))
                n.say(
                    f"{name}: {params} val_auc={trained.val_auc:.4f} "
                    f"test_auc={trained.test_auc:.4f}"
                )
        n.kubectl_run("get", "runs", "-n", self.namespace)
        return sorted(results, key=lambda item: item[1].val_auc, reverse=True)

    def _train_one(
        self,
        run: ActiveRun,
        splits: training.Splits,
        params: dict[str, float | int],
        data_digest: str,
        features: list[int] | None = None,
    ) -> training.Trained:
        run.log_params(params)
        if features is not None:
            run.log_param("features", ",".join(map(str, features)))
        run.log_input("breast-cancer", DATA_URI, data_digest)
        # val_auc is logged after every boosting stage; its last value is the final model's.
        trained = training.train(
            splits, params, lambda step, auc: run.log_metric("val_auc", auc, step=step), features
        )
        run.log_metric("test_auc", trained.test_auc)
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = Path(tmp) / "model"
            model_dir.mkdir()
            (model_dir / "model.pkl").write_bytes(trained.model_bytes)
            info = run.log_model(model_dir, flavor="sklearn")
        run.set_tag("model_uri", info.model_uri)
        return trained

    def register(self, run_name: str, description: str) -> int:
        model_uri = f"runs:/{run_name}/model"
        version = self.sdk.register_model(model_uri, MODEL, description, flavor="sklearn")
        number = version.spec.version
        self.narrator.say(f"registered {MODEL} version {number} from run {run_name}")
        mv = f"{MODEL}-v{number}"
        self.narrator.kubectl_run(
            "wait", "-n", self.namespace, "--for=condition=Ready", f"mv/{mv}", "--timeout=120s"
        )
        return number

    def promote_through_stages(self, version: int) -> None:
        n = self.narrator
        n.step(
            f"Promote version {version} to Staging",
            "the gate result, the serving Deployment's MODEL_VERSION, the rollout",
        )
        self.apply_stage("Staging", version)
        self.wait_stage("Staging", "Staging live", lambda s: s.get("liveVersion") == version)
        n.kubectl_run("get", "modelstages", "-n", self.namespace)
        n.say(f"the Staging Deployment serves MODEL_VERSION={self.served_version('Staging')}")

        n.step(
            f"Promote version {version} to Production through its gates",
            "GATES 2/2: test_auc >= 0.97 and 'was live in Staging'",
        )
        self.apply_stage("Production", version)
        self.wait_stage("Production", "Production live", lambda s: s.get("liveVersion") == version)
        n.kubectl_run("get", "modelstages,deployments", "-n", self.namespace)

    def denied_promotion(self, live_version: int) -> None:
        n = self.narrator
        n.step(
            "Register a worse model and try to promote it",
            "the admission webhook denies it at once, naming the gate and the observed value",
        )
        splits = training.load_splits()
        with self.sdk.start_run(EXPERIMENT, "wrong-feature") as run:
            trained = self._train_one(
                run,
                splits,
                {"n_estimators": 20, "max_depth": 1, "learning_rate": 0.1},
                str(digest_bytes(splits.csv)),
                features=[training.UNINFORMATIVE_FEATURE],
            )
        n.say(f"wrong-feature: test_auc={trained.test_auc:.4f}")
        weak = self.register("wrong-feature", "trained on one uninformative feature")
        result = n.modelplane(
            "promote", MODEL, "Production", str(weak), "-n", self.namespace, check=False
        )
        output = result.stdout + result.stderr
        if result.returncode == 0 or "test_auc" not in output:
            raise DemoError(f"expected the gate to deny version {weak}, got: {output}")
        live = self.stage("Production").get("status", {}).get("liveVersion")
        if live != live_version:
            raise DemoError(f"Production should still serve version {live_version}, not {live}")
        n.say(f"denied: Production still serves version {live}")

    def failed_rollout(self, good: int, candidate: int) -> None:
        n = self.narrator
        n.step(
            f"Promote version {candidate} to Staging with pods that never become Ready",
            "ROLLOUT RolledBack: the Deployment goes back to the last good version by itself",
        )
        self.apply_stage("Staging", candidate, never_ready=True)
        self.wait_stage(
            "Staging",
            "the automatic rollback",
            lambda s: (s.get("rollout") or {}).get("phase") == "RolledBack",
        )
        stage = self.stage("Staging")
        n.kubectl_run("get", "modelstages", "-n", self.namespace)
        served = self.served_version("Staging")
        n.say(
            f"spec.version is still {stage['spec']['version']} (the operator never writes spec); "
            f"the Deployment serves MODEL_VERSION={served} again"
        )
        if served != str(good):
            raise DemoError(
                f"expected Staging to serve version {good} after rollback, not {served}"
            )
        for entry in stage["status"].get("history", []):
            n.say(
                f"history: v{entry.get('from', '-')} -> v{entry['version']} {entry['result']}"
                f" at {entry['at']}"
            )

    def finale(self, version: int) -> None:
        n = self.narrator
        n.step("Where everything stands, and how the live model was made")
        n.kubectl_run("get", "modelplane", "-n", self.namespace)
        n.modelplane("lineage", MODEL, str(version), "-n", self.namespace)
