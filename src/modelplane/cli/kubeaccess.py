"""The CLI's access to the cluster: loading the kubeconfig, the namespace, and the few API calls.

`connect` loads the kubeconfig (`--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`;
inside a pod, the service account) and picks the namespace: `-n/--namespace`, else the
context's namespace, else `default`, as kubectl does. `Kube` reads, lists and patches
modelplane objects in that namespace and asks the API server who the caller is. It turns the
API server's refusals into `CommandError` / `NotFound` carrying the server's own message, so
commands print what the API server (or an admission webhook) said, word for word.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from pydantic import ValidationError

from modelplane.api import GROUP, VERSION, Resource
from modelplane.cli.errors import CommandError, NotFound

_R = TypeVar("_R", bound=Resource)

_SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """`-n/--namespace`, `--kubeconfig` and `--context`, as kubectl spells them."""
    parser.add_argument(
        "-n",
        "--namespace",
        help="namespace (default: the kubeconfig context's namespace, else default)",
    )
    parser.add_argument(
        "--kubeconfig",
        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)",
    )
    parser.add_argument("--context", help="kubeconfig context (default: the current context)")


@dataclass(frozen=True)
class Identity:
    """Who the API server says the caller is."""

    username: str
    groups: tuple[str, ...]


class Kube:
    """modelplane objects in one namespace, through one API client."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self._custom = client.CustomObjectsApi(api_client)

    def get_object(self, kind: type[Resource], name: str) -> dict[str, Any]:
        """One object as the API server returns it; `NotFound` when it does not exist."""
        with self._answering(f"cannot read {_kind_name(kind)} {name}", missing=(kind, name)):
            found: dict[str, Any] = self._custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, kind.crd.plural, name
            )
        return found

    def get(self, kind: type[_R], name: str) -> _R:
        """One object, parsed; `NotFound` when it does not exist."""
        return parse(kind, self.get_object(kind, name))

    def find(self, kind: type[_R], name: str) -> _R | None:
        """One object, parsed, or None when it does not exist."""
        try:
            return self.get(kind, name)
        except NotFound:
            return None

    def list(self, kind: type[_R]) -> list[_R]:
        """Every object of `kind` in the namespace, by name; objects that do not parse (written
        before the CRD's validation existed) are skipped with a warning on stderr."""
        with self._answering(f"cannot list {kind.crd.plural}"):
            answer = self._custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, kind.crd.plural
            )
        parsed: list[_R] = []
        for item in answer.get("items") or []:
            try:
                parsed.append(parse(kind, item))
            except CommandError as error:
                print(f"warning: skipped: {error}", file=sys.stderr)
        parsed.sort(key=lambda obj: obj.metadata.name or "")
        return parsed

    def patch(self, kind: type[Resource], name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of one object; the API server's refusal becomes a CommandError
        holding its message verbatim (an admission webhook's denial included)."""
        doing = f"the API server refused the change of {name}"
        with self._answering(doing, missing=(kind, name), conflict=True):
            patched: dict[str, Any] = self._custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, kind.crd.plural, name, dict(body)
            )
        return patched

    def whoami(self) -> Identity:
        """The caller's identity from a SelfSubjectReview, as `kubectl auth whoami` asks it."""
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        with self._answering("cannot ask the API server who you are"):
            answer = client.AuthenticationV1Api(self.api_client).create_self_subject_review(review)
        user = answer.status.user_info if answer.status is not None else None
        if user is None or not user.username:
            raise CommandError("the API server's SelfSubjectReview named no user")
        return Identity(str(user.username), tuple(user.groups or ()))

    @contextlib.contextmanager
    def _answering(
        self,
        doing: str,
        *,
        missing: tuple[type[Resource], str] | None = None,
        conflict: bool = False,
    ) -> Iterator[None]:
        """Turns the client's errors into CommandErrors: 404 into NotFound for `missing`, 409
        into "changed meanwhile" with `conflict`, an unreachable server into one clear line."""
        try:
            yield
        except client.ApiException as error:
            if error.status == 404 and missing is not None:
                kind, name = missing
                raise NotFound(
                    f"{_kind_name(kind)} {name} not found in namespace {self.namespace}"
                ) from None
            if error.status == 409 and conflict and missing is not None:
                kind, name = missing
                raise CommandError(
                    f"{_kind_name(kind)} {name} changed while the command ran; run it again"
                ) from None
            raise api_error(error, doing) from None
        except urllib3.exceptions.HTTPError as error:
            reason = getattr(error, "reason", None) or error
            host = self.api_client.configuration.host
            raise CommandError(
                f"{doing}: cannot reach the API server at {host}: {reason}"
            ) from None


def connect(kubeconfig: str | None, namespace: str | None, context: str | None = None) -> Kube:
    """A `Kube` for the kubeconfig (or the pod's service account) and the chosen namespace."""
    try:
        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
        if context is not None:
            current = next((c for c in contexts if c.get("name") == context), None)
            if current is None:
                raise CommandError(f"context {context} is not in the kubeconfig")
        api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        default = ((current or {}).get("context") or {}).get("namespace") or "default"
    except config.ConfigException as error:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
            return Kube(client.ApiClient(), namespace or _pod_namespace())
        raise CommandError(f"cannot load the kubeconfig: {error}") from None
    return Kube(api_client, namespace or default)


def connect_from(args: argparse.Namespace) -> Kube:
    """`connect` with the options of `add_connection_arguments`."""
    return connect(args.kubeconfig, args.namespace, args.context)


def _pod_namespace() -> str:
    try:
        return _SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"


def parse(kind: type[_R], obj: Mapping[str, Any]) -> _R:
    """`obj` parsed as `kind`; a CommandError naming the object when it does not fit."""
    try:
        return kind.from_object(obj)
    except ValidationError as error:
        name = (obj.get("metadata") or {}).get("name")
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_url=False)
        )
        raise CommandError(f"{_kind_name(kind)} {name} does not parse: {problems}") from None


def api_error(error: Any, doing: str) -> CommandError:
    """A CommandError with the API server's message (Status.message) as it was sent."""
    return CommandError(f"{doing}: {server_message(error)}")


def server_message(error: Any) -> str:
    """The message of an ApiException: its Status body's message, else its reason."""
    body = getattr(error, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str) and body:
        try:
            status = json.loads(body)
        except ValueError:
            return body.strip()
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
    reason = getattr(error, "reason", None) or "no reason given"
    code = getattr(error, "status", None)
    return f"{code} {reason}" if code else str(reason)


def _kind_name(kind: type[Resource]) -> str:
    return kind.__name__
