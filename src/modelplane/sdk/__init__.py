"""The tracking SDK: training code records runs, metrics and models as modelplane resources.

It reads like MLflow::

    import modelplane

    modelplane.set_experiment("churn", objective="val_auc")
    with modelplane.start_run() as run:
        modelplane.log_params({"learning_rate": 0.05, "max_depth": 6})
        modelplane.log_input("train", "s3://datasets/churn/train.parquet", digest=dvc_md5)
        for step in range(100):
            modelplane.log_metric("val_auc", evaluate(), step=step)
        info = modelplane.log_model("model/", flavor="xgboost")
    modelplane.register_model(info, "churn-model")

Runs are Run objects in the cluster; metrics are buffered in memory and flushed in batches
(summaries to the Run's status, full histories to the artifact store), with heartbeats that
tell the operator the training process is alive. Configuration comes from the environment
(`modelplane.sdk.config`) or an explicit `Client`.
"""

from modelplane.sdk.buffers import Summary
from modelplane.sdk.client import Client
from modelplane.sdk.errors import (
    ApiError,
    ArtifactExistsError,
    ConflictError,
    InputConflictError,
    InvalidDigestError,
    InvalidObjectError,
    MetricsNotStoredError,
    ModelplaneError,
    NotFoundError,
    ParamConflictError,
    RegistrationError,
    RunExistsError,
    RunStateError,
)
from modelplane.sdk.fluent import (
    active_run,
    end_run,
    get_client,
    load_metric_history,
    log_artifact,
    log_artifacts,
    log_input,
    log_metric,
    log_metrics,
    log_model,
    log_param,
    log_params,
    register_model,
    set_client,
    set_experiment,
    set_tag,
    set_tags,
    start_run,
)
from modelplane.sdk.histories import Metric
from modelplane.sdk.inputs import data_digest
from modelplane.sdk.models import ModelInfo
from modelplane.sdk.runs import ActiveRun, RunInfo

__all__ = [
    "ActiveRun",
    "ApiError",
    "ArtifactExistsError",
    "Client",
    "ConflictError",
    "InputConflictError",
    "InvalidDigestError",
    "InvalidObjectError",
    "Metric",
    "MetricsNotStoredError",
    "ModelInfo",
    "ModelplaneError",
    "NotFoundError",
    "ParamConflictError",
    "RegistrationError",
    "RunExistsError",
    "RunInfo",
    "RunStateError",
    "Summary",
    "active_run",
    "data_digest",
    "end_run",
    "get_client",
    "load_metric_history",
    "log_artifact",
    "log_artifacts",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "register_model",
    "set_client",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
]
