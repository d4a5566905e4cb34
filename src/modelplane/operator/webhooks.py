"""The admission webhook server: its mode, its certificates, and kopf's admission settings.

The API server calls webhooks over HTTPS only and checks the server certificate against the
`caBundle` of the webhook configuration. The certificate comes from one of two places (both
in `modelplane.operator.webhookcerts`):

- **Made at start** (the default): the operator makes a fresh CA and a serving certificate
  signed by it with the `cryptography` package (kopf's own generator uses oscrypto, which
  cannot parse OpenSSL 3's version string), serves with `kopf.WebhookServer`, and lets kopf
  create and keep current the `ValidatingWebhookConfiguration` and
  `MutatingWebhookConfiguration` named `modelplane.io`, caBundle included. Every operator
  makes its own CA, so only one may run this way.
- **Mounted** (`--webhook-cert-dir` or `MODELPLANE_WEBHOOK_CERT_DIR`, service mode only): the
  operator serves with `tls.crt` and `tls.key` from the directory (a kubernetes.io/tls Secret,
  or cert-manager's, mounted as a volume) and leaves the webhook configurations alone: the
  installation (the Helm chart, the kustomize base) owns them and their caBundle. Replicas
  share the certificate, so any number can serve. The files are checked at start (a missing
  or unreadable file, a key that does not match, a certificate that has expired, does not name
  the Service, or is not issued by `ca.crt` when that file exists stops the operator with a
  message naming the file) and re-read every `CERT_CHECK_INTERVAL` seconds: a changed, valid
  certificate (cert-manager renews it, the kubelet updates the volume) is loaded in place for
  the next TLS handshakes, without a restart; a changed, invalid one is logged and the current
  one kept.

When the operator stops, the webhooks that fail closed (requested-by and approvals, see
`modelplane.operator.admission`) stay configured, so ModelStage writes are refused until an
operator serves them again; with a certificate made at start, kopf removes the fail-open gates
webhook. In `local` mode a clean shutdown deletes both configurations, since nothing will ever
serve that endpoint again; after a crash they stay until the next start. To turn the webhooks
off for good, delete them:
`kubectl delete validatingwebhookconfiguration,mutatingwebhookconfiguration modelplane.io`.

Modes (`--webhook` or `MODELPLANE_WEBHOOK`):

- `off` (default): no server and no webhook configuration; nothing checks ModelStage writes
  at admission and approvals are not authenticated.
- `local`: listen on 127.0.0.1 and let the API server call `https://127.0.0.1:<port>`; for an
  operator running next to the API server (the local control plane, tests, development).
- `service`: listen on all interfaces and let the API server call the Service
  `MODELPLANE_WEBHOOK_SERVICE` (`<namespace>/<name>`) on the same port; the certificate names
  the Service's DNS names. For the operator running in a pod.

The port comes from `--webhook-port` or `MODELPLANE_WEBHOOK_PORT`: a free port by default in
`local` mode, 9443 in `service` mode.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import kopf
from kubernetes import client

from modelplane.operator.webhookcerts import (
    MountedCertificate,
    generate_certificates,
)

logger = logging.getLogger(__name__)

WebhookMode = Literal["off", "local", "service"]
MODES: tuple[WebhookMode, ...] = ("off", "local", "service")

MANAGED_NAME = "modelplane.io"
"""Name of the webhook configurations kopf creates and keeps current (certificate made at start)."""

DEFAULT_SERVICE_PORT = 9443
LOCAL_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class WebhookConfig:
    """How (and whether) to serve admission webhooks."""

    mode: WebhookMode = "off"
    port: int | None = None
    service: str | None = None
    """`<namespace>/<name>` of the Service in front of the operator (service mode)."""
    namespaces: tuple[str, ...] = ()
    """The operator's namespace patterns (`--namespace`); empty: every namespace."""
    cert_dir: Path | None = None
    """A directory holding tls.crt, tls.key (and ca.crt): serve with them and leave the webhook
    configurations to the installation. None: make a certificate and let kopf manage them."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebhookConfig:
        """The configuration from MODELPLANE_WEBHOOK, _PORT, _SERVICE and _CERT_DIR."""
        env = os.environ if env is None else env
        mode = env.get("MODELPLANE_WEBHOOK", "off") or "off"
        port = env.get("MODELPLANE_WEBHOOK_PORT")
        cert_dir = env.get("MODELPLANE_WEBHOOK_CERT_DIR")
        return cls.of(
            mode,
            int(port) if port else None,
            env.get("MODELPLANE_WEBHOOK_SERVICE"),
            cert_dir=Path(cert_dir) if cert_dir else None,
        )

    @classmethod
    def of(
        cls,
        mode: str,
        port: int | None,
        service: str | None,
        namespaces: Sequence[str] = (),
        *,
        cert_dir: Path | None = None,
    ) -> WebhookConfig:
        """A checked configuration; ValueError says what is wrong."""
        if mode not in MODES:
            raise ValueError(f"webhook mode must be one of {', '.join(MODES)}, not {mode!r}")
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"webhook port must be 1-65535, not {port}")
        malformed = not service or service.count("/") != 1 or not all(service.split("/"))
        if mode == "service" and malformed:
            raise ValueError(
                "service mode needs MODELPLANE_WEBHOOK_SERVICE=<namespace>/<name> "
                f"(got {service!r})"
            )
        if cert_dir is not None and mode != "service":
            # Local mode registers its own configurations (and deletes them at shutdown);
            # a mounted certificate belongs to an installation that registers them.
            raise ValueError(
                f"a webhook certificate directory ({cert_dir}) needs service mode, not {mode!r}"
            )
        return cls(mode, port, service or None, tuple(namespaces), cert_dir)

    @property
    def manages_configurations(self) -> bool:
        """Whether kopf creates and updates the webhook configurations (and their caBundle)."""
        return self.mode != "off" and self.cert_dir is None

    def serves(self, namespace: str | None) -> bool:
        """Whether the operator serves `namespace`, by kopf's rules for `--namespace` patterns.

        The webhook configurations apply to the whole cluster, so the handlers themselves leave
        alone the namespaces the operator does not watch.
        """
        if not self.namespaces:
            return True
        return namespace is not None and any(
            matches_namespace(namespace, pattern) for pattern in self.namespaces
        )

    def service_ref(self) -> tuple[str, str]:
        """(namespace, name) of the Service."""
        namespace, name = (self.service or "/").split("/")
        return namespace, name

    def hosts(self) -> list[str]:
        """The names and addresses the serving certificate must hold."""
        if self.mode != "service":
            return list(LOCAL_HOSTS)
        namespace, name = self.service_ref()
        return [
            name,
            f"{name}.{namespace}",
            f"{name}.{namespace}.svc",
            f"{name}.{namespace}.svc.cluster.local",
        ]

    def called_as(self) -> list[str]:
        """The names the API server checks the certificate against: `<name>.<namespace>.svc`
        for a webhook behind a Service (a `clientConfig.service`)."""
        if self.mode != "service":
            return []
        namespace, name = self.service_ref()
        return [f"{name}.{namespace}.svc"]


def matches_namespace(name: str, pattern: str) -> bool:
    """kopf's namespace pattern: comma-separated globs, `!` excludes, a leading `!` implies `*`.

    The first inclusive glob includes; each exclusion then removes a match, and later inclusive
    globs bring back only what the first one included (kopf's `match_namespace`).
    """
    globs = [glob.strip() for glob in pattern.split(",")]
    if globs[0].startswith("!"):
        globs.insert(0, "*")
    first = matched = fnmatch.fnmatch(name, globs[0])
    for glob in globs[1:]:
        if glob.startswith("!"):
            matched = matched and not fnmatch.fnmatch(name, glob[1:])
        else:
            matched = matched or (first and fnmatch.fnmatch(name, glob))
    return matched


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now (the server binds it a moment later)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServiceWebhookServer(kopf.WebhookServer):
    """kopf's server, but the API server is told to call a Service rather than a URL.

    The API server usually cannot resolve cluster DNS, so a webhook behind a Service must be
    configured with `clientConfig.service`; kopf adds each handler's path to it.
    """

    def __init__(self, *, namespace: str, name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service_namespace = namespace
        self.service_name = name

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        async for config in super().__call__(fn):
            yield service_client_config(
                config, namespace=self.service_namespace, name=self.service_name, port=self.port
            )


def service_client_config(
    config: kopf.WebhookClientConfig, *, namespace: str, name: str, port: int | None
) -> kopf.WebhookClientConfig:
    """kopf's URL client config turned into a Service reference with the same CA bundle."""
    service = kopf.WebhookClientConfigService(namespace=namespace, name=name)
    if port is not None:
        service["port"] = port
    result = kopf.WebhookClientConfig(service=service)
    if "caBundle" in config:
        result["caBundle"] = config["caBundle"]
    return result


class MountedCertWebhookServer(ServiceWebhookServer):
    """The Service webhook server with a mounted certificate, re-read while it serves.

    kopf's own reloading (its `file_check_interval`) restarts the listener, refusing
    connections meanwhile, and stops the operator when it meets a half-updated pair; this
    server keeps listening and swaps the certificate in place (`MountedCertificate`).
    """

    def __init__(self, *, certificate: MountedCertificate, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.certificate = certificate

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        watcher = asyncio.create_task(self.certificate.watch(), name="webhook certificate")
        try:
            async for config in super().__call__(fn):
                yield config
        finally:
            watcher.cancel()

    def _build_ssl(self) -> tuple[bytes | None, ssl.SSLContext | None]:
        # kopf would load the files once, or generate a certificate; ours is loaded already.
        # No CA bundle: nothing registers this server's client config (the installation
        # owns the webhook configurations).
        return None, self.certificate.context


class DisabledWebhooks:
    """A webhook "server" that never serves: admission handlers stay registered but unused.

    kopf refuses to start when admission handlers exist without a server; this lets the
    operator run with the webhook off while the handlers' module is always imported.
    """

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:  # noqa: ARG002
        await asyncio.Event().wait()
        # Unreachable: the yield makes this an async generator, as kopf expects.
        yield kopf.WebhookClientConfig()  # pragma: no cover


def build_server(config: WebhookConfig, certs_dir: Path | None = None) -> Any:
    """The object for `settings.admission.server`: a kopf webhook server, or DisabledWebhooks."""
    if config.mode == "off":
        return DisabledWebhooks()
    if config.cert_dir is not None:
        namespace, name = config.service_ref()
        port = config.port or DEFAULT_SERVICE_PORT
        logger.info(
            "serving admission webhooks on :%d behind Service %s/%s; the installation owns "
            "the webhook configurations",
            port,
            namespace,
            name,
        )
        return MountedCertWebhookServer(
            certificate=MountedCertificate(config.cert_dir, config.called_as()),
            namespace=namespace,
            name=name,
            addr="0.0.0.0",  # noqa: S104 - the Service reaches the pod on its IP
            port=port,
        )
    directory = certs_dir or Path(tempfile.mkdtemp(prefix="modelplane-webhook-"))
    certs = generate_certificates(config.hosts(), directory)
    common: dict[str, Any] = {
        "certfile": certs.certfile,
        "pkeyfile": certs.keyfile,
        "cadata": certs.ca_pem,
    }
    if config.mode == "local":
        port = config.port or free_port()
        logger.info("serving admission webhooks at https://127.0.0.1:%d", port)
        return kopf.WebhookServer(addr="127.0.0.1", host="127.0.0.1", port=port, **common)
    namespace, name = config.service_ref()
    port = config.port or DEFAULT_SERVICE_PORT
    logger.info("serving admission webhooks on :%d behind Service %s/%s", port, namespace, name)
    return ServiceWebhookServer(
        namespace=namespace,
        name=name,
        addr="0.0.0.0",  # noqa: S104 - the Service reaches the pod on its IP
        port=port,
        **common,
    )


def config_of(memo: Mapping[str, Any]) -> WebhookConfig:
    """The configuration the runner put in kopf's memo; without one, the environment's."""
    config = memo.get("webhook")
    return config if isinstance(config, WebhookConfig) else WebhookConfig.from_env()


def configure(settings: kopf.OperatorSettings, config: WebhookConfig) -> None:
    """Set kopf's admission settings for `config` (from the operator's startup handler)."""
    settings.admission.server = build_server(config)
    settings.admission.managed = MANAGED_NAME if config.manages_configurations else None
    if config.mode == "off":
        logger.info("admission webhooks are off (--webhook or MODELPLANE_WEBHOOK to enable)")
    elif logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # One access line per admission call (three per ModelStage write) drowns the log.
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def delete_configurations(api_client: Any, name: str = MANAGED_NAME) -> None:
    """Delete the webhook configurations named `name` (the managed ones), if they exist."""
    admission = client.AdmissionregistrationV1Api(api_client)
    for delete in (
        admission.delete_validating_webhook_configuration,
        admission.delete_mutating_webhook_configuration,
    ):
        try:
            delete(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
