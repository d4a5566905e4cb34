"""The admission webhooks' certificates: made at start, or mounted from a Secret and reloaded.

`modelplane.operator.webhooks` chooses how the webhooks are served; this module holds the
certificate side. In `local` mode (and `service` mode without a mounted directory) the operator
makes a CA and a serving certificate with `cryptography` at start (`generate_certificates`;
kopf's own generator uses oscrypto, which cannot parse OpenSSL 3's version string). With a
mounted directory (`--webhook-cert-dir`), `read_certificate` checks the files at start and
`MountedCertificate` reloads them in place when they change (cert-manager renews them).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import os
import shutil
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

logger = logging.getLogger(__name__)

CERTIFICATE_LIFETIME = timedelta(days=365)
# Tolerates clocks a little behind ours: a certificate is valid from a few minutes ago.
_BACKDATE = timedelta(minutes=5)

CERT_FILE, KEY_FILE, CA_FILE = "tls.crt", "tls.key", "ca.crt"
"""The file names of a kubernetes.io/tls Secret (cert-manager adds ca.crt) in a mounted dir."""
CERT_CHECK_INTERVAL = 10.0
"""Seconds between reads of a mounted certificate. The kubelet updates a Secret's volume a
minute or so after the Secret changes, so this adds little to a renewal's delay."""


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
