"""Operator-wide kopf settings: where kopf keeps its own state, how it posts Events, how
admission webhooks are served (`modelplane.operator.webhooks`), and how namespaces being
deleted are watched (`modelplane.operator.kopfnamespaces`)."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from modelplane.operator import kopfnamespaces, kube, webhooks

# Before kopf.run: the runner imports this module first (see `kopfnamespaces`).
kopfnamespaces.install()

# kopf keeps handler progress and the last-handled spec in annotations under our own prefix,
# so `kubectl get -o yaml` shows whose they are.
PREFIX = "modelplane.io"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    # Events are for people: significant transitions only, posted at INFO and above.
    settings.posting.level = logging.INFO
    # Re-establish watches regularly so a silently dropped connection cannot stall us.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    # Plain-function handlers and admission webhooks share kopf's thread pool, whose default
    # size is cores + 4 (6 here). Reconciliations that block on API calls could hold every
    # thread while the API server waits on our own webhooks: admission answers queued for
    # seconds in the promotion benchmark. A larger pool keeps webhooks answerable.
    settings.execution.max_workers = kube.HANDLER_THREADS
    # The runner passes the --webhook options in the memo; without them, the environment.
    webhooks.configure(settings, webhooks.config_of(memo))
