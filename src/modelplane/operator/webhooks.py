"""The admission webhook server: its mode, its certificates, and kopf's admission settings.

The API server calls webhooks over HTTPS only and checks the server certificate against the
`caBundle` of the webhook configuration. At start the operator makes a fresh CA and a serving
certificate signed by it with the `cryptography` package (kopf's own generator uses oscrypto,
which cannot parse OpenSSL 3's version string), serves with `kopf.WebhookServer`, and lets kopf
create and keep current the `ValidatingWebhookConfiguration` and
`MutatingWebhookConfiguration` named `modelplane.io`, caBundle included.

When the operator stops, the webhooks that fail closed (requested-by and approvals, see
`modelplane.operator.admission`) stay configured, so ModelStage writes are refused until an
operator serves them again; the fail-open gates webhook is removed. In `local` mode a clean
shutdown deletes both configurations, since nothing will ever serve that endpoint again; after
a crash they stay until the next start. To turn the webhooks off for good, delete them:
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
import ipaddress
import logging
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import kopf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client

logger = logging.getLogger(__name__)

WebhookMode = Literal["off", "local", "service"]
MODES: tuple[WebhookMode, ...] = ("off", "local", "service")

MANAGED_NAME = "modelplane.io"
"""Name of the webhook configurations kopf creates and keeps current."""

DEFAULT_SERVICE_PORT = 9443
LOCAL_HOSTS = ("127.0.0.1", "localhost")
CERTIFICATE_LIFETIME = timedelta(days=365)
# Tolerates clocks a little behind ours: a certificate is valid from a few minutes ago.
_BACKDATE = timedelta(minutes=5)


@dataclass(frozen=True)
class WebhookConfig:
    """How (and whether) to serve admission webhooks."""

    mode: WebhookMode = "off"
    port: int | None = None
    service: str | None = None
    """`<namespace>/<name>` of the Service in front of the operator (service mode)."""
    namespaces: tuple[str, ...] = ()
    """The operator's namespace patterns (`--namespace`); empty: every namespace."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebhookConfig:
        """The configuration from MODELPLANE_WEBHOOK, _PORT and _SERVICE."""
        env = os.environ if env is None else env
        mode = env.get("MODELPLANE_WEBHOOK", "off") or "off"
        port = env.get("MODELPLANE_WEBHOOK_PORT")
        return cls.of(mode, int(port) if port else None, env.get("MODELPLANE_WEBHOOK_SERVICE"))

    @classmethod
    def of(
        cls,
        mode: str,
        port: int | None,
        service: str | None,
        namespaces: Sequence[str] = (),
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
        return cls(mode, port, service or None, tuple(namespaces))

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


@dataclass(frozen=True)
class Certificates:
    """A CA (its PEM goes to the webhook configurations) and a serving certificate signed by it."""

    ca_pem: bytes
    certfile: Path
    keyfile: Path


def generate_certificates(
    hosts: Sequence[str], directory: Path, *, now: datetime | None = None
) -> Certificates:
    """Make a CA and a serving certificate for `hosts` (IPs and DNS names) in `directory`.

    The serving key is written with mode 0600. Names go into subjectAltName, which is all the
    API server reads (it ignores the common name).
    """
    now = now or datetime.now(UTC)
    not_before, not_after = now - _BACKDATE, now + CERTIFICATE_LIFETIME
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelplane webhook CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signing=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = directory / "tls.crt", directory / "tls.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return Certificates(ca_cert.public_bytes(serialization.Encoding.PEM), certfile, keyfile)


def _key_usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signing,
        crl_sign=signing,
        encipher_only=False,
        decipher_only=False,
    )


def _names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


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
    settings.admission.managed = MANAGED_NAME if config.mode != "off" else None
    if config.mode == "off":
        logger.info("admission webhooks are off (--webhook or MODELPLANE_WEBHOOK to enable)")
    elif logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # One access line per admission call (three per ModelStage write) drowns the log.
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def delete_configurations(api_client: Any) -> None:
    """Delete the managed webhook configurations, if they exist."""
    admission = client.AdmissionregistrationV1Api(api_client)
    for delete in (
        admission.delete_validating_webhook_configuration,
        admission.delete_mutating_webhook_configuration,
    ):
        try:
            delete(MANAGED_NAME)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
