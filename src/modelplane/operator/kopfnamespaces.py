"""kopf and namespaces that are being deleted: two fixes for kopf 1.45 with namespace patterns.

With ``--namespace`` patterns kopf watches each matching namespace on its own, and stops those
watches when it considers the namespace deleted.

1. **A namespace being deleted is still served.** kopf counts a namespace as deleted as soon
   as it is marked for deletion and the namespace controller has written conditions of which
   none is True: the moment that controller starts deleting the namespace's content. kopf then
   stops watching it, so our finalizers on the objects there are never removed and the
   namespace stays Terminating for good (reproduced: a namespace with one Experiment, deleted
   while the operator ran). A namespace that is already Terminating when the operator starts
   is not watched at all, for the same reason. `revise_namespaces` here forgets a namespace
   only on its DELETED event, when the API server has removed it: until then the operator
   serves it, and finalizes what is deleted in it.
2. **A watch that ends early does not block the others.** kopf runs no handler for an object
   before every watch of a kind with index handlers has finished its first listing (a toggle
   per watch, and one per object until it is indexed, in an operator-wide set). A watch
   cancelled before its first listing (its namespace went away meanwhile), and the per-object
   workers cancelled with it, never drop their toggles, so objects everywhere wait for good:
   an operator that is live and handles nothing. `watcher` and `worker` here drop their
   toggles whenever they end.

These replace functions of kopf's private modules, which kopf looks up when it calls them, so
`install` must run before `kopf.run`; the runner calls it. If a kopf upgrade moves them, that
part is skipped with a warning and kopf behaves as it does by itself. Revisit on any upgrade.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Collection, Coroutine
from typing import Any

logger = logging.getLogger(__name__)

_installed = False


def install() -> None:
    """Apply both fixes (once; later calls do nothing)."""
    global _installed  # noqa: PLW0603 - one process-wide patch of kopf
    if _installed:
        return
    _installed = True
    try:
        from kopf._core.reactor import observation, queueing  # noqa: PLC0415
    except ImportError as error:
        logger.warning("kopf's internals moved (%s): namespace fixes not applied", error)
        return
    if not callable(getattr(observation, "revise_namespaces", None)):
        logger.warning("kopf has no revise_namespaces: Terminating namespaces are not served")
    else:
        observation.revise_namespaces = revise_namespaces
    for name in ("watcher", "worker"):
        original = getattr(queueing, name, None)
        if not callable(original):
            logger.warning("kopf has no queueing.%s: its readiness toggles are not released", name)
            continue
        setattr(queueing, name, releasing_toggles(original))


def revise_namespaces(
    *,
    insights: Any,
    namespaces: Collection[Any],
    raw_events: Collection[Any] = (),
    raw_bodies: Collection[Any] = (),
) -> None:
    """kopf's `revise_namespaces`, forgetting a namespace only when it is really gone."""
    from kopf._cogs.structs import references  # noqa: PLC0415

    listed = [{"type": None, "object": body} for body in raw_bodies]
    for raw_event in [*raw_events, *listed]:
        name = raw_event["object"]["metadata"]["name"]
        if raw_event["type"] == "DELETED":
            insights.namespaces.discard(name)
        elif any(references.match_namespace(name, pattern) for pattern in namespaces):
            insights.namespaces.add(name)


def releasing_toggles(
    run: Callable[..., Coroutine[Any, Any, None]],
) -> Callable[..., Coroutine[Any, Any, None]]:
    """Wrap kopf's watcher or worker so its readiness toggle is dropped when it ends."""

    @functools.wraps(run)
    async def wrapped(
        *, operator_indexed: Any = None, resource_indexed: Any = None, **kwargs: Any
    ) -> None:
        try:
            await run(
                operator_indexed=operator_indexed, resource_indexed=resource_indexed, **kwargs
            )
        finally:
            if operator_indexed is not None and resource_indexed is not None:
                # A task of its own: a second cancellation of this one cannot stop it, and
                # dropping a toggle that is already gone does nothing.
                _keep(asyncio.ensure_future(operator_indexed.drop_toggle(resource_indexed)))

    return wrapped


_pending: set[asyncio.Future[None]] = set()


def _keep(future: asyncio.Future[None]) -> None:
    """Hold a reference until the future is done (the loop holds only weak ones)."""
    _pending.add(future)
    future.add_done_callback(_pending.discard)
