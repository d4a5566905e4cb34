"""The admission webhook server: its mode, its certificates, and kopf's admission settings.

The API server calls webhooks over HTTPS only and checks the server certificate against the
`caBundle` of the webhook configuration. The certificate comes from one of two places:

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
import hashlib
import ipaddress
import logging
import os
import shutil
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import kopf
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client

logger = logging.getLogger(__name__)

WebhookMode = Literal["off", "local", "service"]
MODES: tuple[WebhookMode, ...] = ("off", "local", "service")

MANAGED_NAME = "modelplane.io"
"""Name of the webhook configurations kopf creates and keeps current (certificate made at start)."""

DEFAULT_SERVICE_PORT = 9443
LOCAL_HOSTS = ("127.0.0.1", "localhost")
CERTIFICATE_LIFETIME = timedelta(days=365)
# Tolerates clocks a little behind ours: a certificate is valid from a few minutes ago.
_BACKDATE = timedelta(minutes=5)

CERT_FILE, KEY_FILE, CA_FILE = "tls.crt", "tls.key", "ca.crt"
"""The file names of a kubernetes.io/tls Secret (cert-manager adds ca.crt) in a mounted dir."""
CERT_CHECK_INTERVAL = 10.0
"""Seconds between reads of a mounted certificate. The kubelet updates a Secret's volume a
minute or so after the Secret changes, so this adds little to a renewal's delay."""


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


class CertificateError(ValueError):
    """A mounted certificate that cannot serve; the message names the file and the problem."""


@dataclass(frozen=True)
class MountedFiles:
    """The bytes of a certificate directory's files, read once so that checks and loading see
    the same certificate even while the kubelet swaps the volume's contents."""

    directory: Path
    chain: bytes
    key: bytes
    ca: bytes | None

    @classmethod
    def read(cls, directory: Path) -> MountedFiles:
        ca = directory / CA_FILE
        return cls(
            directory,
            _read(directory / CERT_FILE),
            _read(directory / KEY_FILE),
            _read(ca) if ca.exists() else None,
        )

    @property
    def digest(self) -> str:
        """A digest of the three files, to notice a change without keeping them around."""
        hasher = hashlib.sha256()
        for data in (self.chain, self.key, self.ca or b""):
            hasher.update(hashlib.sha256(data).digest())
        return hasher.hexdigest()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CertificateError(
            f"webhook certificate file {path} is missing: the directory must hold "
            f"{CERT_FILE} and {KEY_FILE} (a kubernetes.io/tls Secret), and may hold {CA_FILE}"
        ) from None
    except OSError as exc:
        raise CertificateError(
            f"webhook certificate file {path} cannot be read: {exc.strerror}"
        ) from None


@dataclass(frozen=True)
class ServingCertificate:
    """A checked serving certificate: the digest of its files and what the log reports."""

    digest: str
    subject: str
    names: tuple[str, ...]
    not_after: datetime


def check_certificate(
    files: MountedFiles, called_as: Sequence[str] = (), *, now: datetime | None = None
) -> ServingCertificate:
    """Check that the files can serve webhooks called as `called_as`; CertificateError if not.

    tls.crt holds the serving certificate (then any intermediates); tls.key its unencrypted
    private key. The certificate must be valid now and hold each of `called_as` in its
    subjectAltName. When ca.crt exists, a certificate of tls.crt must be one of its
    certificates or issued by one: it is what the webhook configurations' caBundle holds.
    """
    now = now or datetime.now(UTC)
    certfile, keyfile = files.directory / CERT_FILE, files.directory / KEY_FILE
    chain = _certificates(files.chain, certfile)
    leaf = chain[0]
    try:
        key = serialization.load_pem_private_key(files.key, password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(
            f"webhook key {keyfile} is not an unencrypted PEM private key: {exc}"
        ) from None
    if _public_der(key.public_key()) != _public_der(leaf.public_key()):
        raise CertificateError(f"webhook key {keyfile} is not the key of {certfile}")
    if now < leaf.not_valid_before_utc:
        raise CertificateError(
            f"webhook certificate {certfile} is not valid before {leaf.not_valid_before_utc}"
        )
    if now >= leaf.not_valid_after_utc:
        raise CertificateError(
            f"webhook certificate {certfile} expired at {leaf.not_valid_after_utc}"
        )
    names = _dns_names(leaf)
    missing = [name for name in called_as if not any(_matches(name, n) for n in names)]
    if missing:
        raise CertificateError(
            f"webhook certificate {certfile} does not name {', '.join(missing)}, the name the "
            f"API server calls the webhook Service by (it names {', '.join(names) or 'nothing'})"
        )
    if files.ca is not None:
        cafile = files.directory / CA_FILE
        cas = _certificates(files.ca, cafile)
        if not any(_issued_by(cert, ca) for cert in chain for ca in cas):
            raise CertificateError(
                f"webhook certificate {certfile} is not issued by {cafile}: the webhook "
                "configurations' caBundle would not verify it"
            )
    return ServingCertificate(
        files.digest, leaf.subject.rfc4514_string(), tuple(names), leaf.not_valid_after_utc
    )


def read_certificate(directory: Path, called_as: Sequence[str] = ()) -> ServingCertificate:
    """Read and check the certificate in `directory` (see `check_certificate`)."""
    return check_certificate(MountedFiles.read(directory), called_as)


def _certificates(data: bytes, path: Path) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateError(f"{path} holds no PEM certificate: {exc}") from None


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [
        *names.get_values_for_type(x509.DNSName),
        *map(str, names.get_values_for_type(x509.IPAddress)),
    ]


def _matches(host: str, name: str) -> bool:
    """Whether a certificate name covers `host`: equal, or a wildcard for its first label."""
    if name.startswith("*."):
        return host.partition(".")[2] == name[2:]
    return host == name


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    if cert == ca:
        return True
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _load_chain(context: ssl.SSLContext, files: MountedFiles) -> None:
    """Load the files' certificate and key into `context`, from private copies that live only
    for the call: SSLContext reads only files, and the mounted ones could change between its
    reads of the two (kopf writes its generated key to a temporary file the same way)."""
    directory = Path(tempfile.mkdtemp(prefix="modelplane-webhook-"))
    try:
        certfile, keyfile = directory / CERT_FILE, directory / KEY_FILE
        certfile.write_bytes(files.chain)
        fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(files.key)
        context.load_cert_chain(certfile, keyfile)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _server_context() -> ssl.SSLContext:
    return ssl.create_default_context(purpose=ssl.Purpose.CLIENT_AUTH)


class MountedCertificate:
    """A mounted serving certificate in an SSL context, reloaded in place when it changes.

    OpenSSL copies a context's certificate into each connection when it begins, so loading a
    new one into the live context changes the next handshakes and none in progress.
    """

    def __init__(
        self,
        directory: Path,
        called_as: Sequence[str] = (),
        *,
        interval: float = CERT_CHECK_INTERVAL,
    ) -> None:
        self.directory = directory
        self.called_as = tuple(called_as)
        self.interval = interval
        files = MountedFiles.read(directory)
        self.current = check_certificate(files, self.called_as)
        self.context = _server_context()
        _load_chain(self.context, files)
        self._refused: str | None = None
        logger.info("serving admission webhooks with %s", self._describe(self.current))

    def _describe(self, cert: ServingCertificate) -> str:
        return (
            f"the certificate in {self.directory} ({cert.subject}, names "
            f"{', '.join(cert.names)}, expires {cert.not_after:%Y-%m-%d %H:%M} UTC)"
        )

    def reload(self) -> bool:
        """Re-read the files; load them if they changed and can serve. True when loaded.

        A changed certificate that cannot serve is logged once and the current one kept: the
        kubelet may be midway through an update, and a certificate that still works beats
        none.
        """
        try:
            files = MountedFiles.read(self.directory)
        except CertificateError as exc:
            return self._refuse(str(exc), str(exc))
        digest = files.digest
        if digest == self.current.digest:
            self._refused = None
            return False
        try:
            cert = check_certificate(files, self.called_as)
            # A fresh context first: a pair OpenSSL refuses must not half-load the live one.
            _load_chain(_server_context(), files)
        except (CertificateError, ssl.SSLError) as exc:
            return self._refuse(digest, str(exc))
        _load_chain(self.context, files)
        self.current, self._refused = cert, None
        logger.info("reloaded the admission webhooks' certificate: %s", self._describe(cert))
        return True

    def _refuse(self, key: str, message: str) -> bool:
        if key != self._refused:
            logger.error("kept the current webhook certificate: %s", message)
            self._refused = key
        return False

    async def watch(self) -> None:
        """Reload every `interval` seconds, forever."""
        while True:
            await asyncio.sleep(self.interval)
            self.reload()


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
