"""The webhook server's configuration and certificates (no cluster needed)."""

from __future__ import annotations

import base64
import ipaddress
import logging
import ssl
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import kopf
import pytest
from cryptography import x509

from modelplane.operator.webhookcerts import (
    CertificateError,
    MountedCertificate,
    generate_certificates,
    read_certificate,
)
from modelplane.operator.webhooks import (
    DisabledWebhooks,
    MountedCertWebhookServer,
    WebhookConfig,
    build_server,
    configure,
    service_client_config,
)


def test_the_webhook_is_off_unless_asked_for() -> None:
    assert WebhookConfig.from_env({}) == WebhookConfig("off", None, None)
    assert WebhookConfig.from_env({"MODELPLANE_WEBHOOK": ""}).mode == "off"
    assert isinstance(build_server(WebhookConfig()), DisabledWebhooks)


def test_the_environment_configures_local_and_service_modes() -> None:
    local = WebhookConfig.from_env(
        {"MODELPLANE_WEBHOOK": "local", "MODELPLANE_WEBHOOK_PORT": "9999"}
    )
    assert local == WebhookConfig("local", 9999, None)
    assert local.hosts() == ["127.0.0.1", "localhost"]
    service = WebhookConfig.from_env(
        {"MODELPLANE_WEBHOOK": "service", "MODELPLANE_WEBHOOK_SERVICE": "modelplane/webhook"}
    )
    assert service.service_ref() == ("modelplane", "webhook")
    assert service.hosts() == [
        "webhook",
        "webhook.modelplane",
        "webhook.modelplane.svc",
        "webhook.modelplane.svc.cluster.local",
    ]


@pytest.mark.parametrize(
    ("mode", "port", "service", "error"),
    [
        ("remote", None, None, "webhook mode must be one of off, local, service"),
        ("local", 70000, None, "webhook port must be 1-65535"),
        ("service", None, None, "service mode needs MODELPLANE_WEBHOOK_SERVICE"),
        ("service", None, "webhook", "service mode needs MODELPLANE_WEBHOOK_SERVICE"),
        ("service", None, "ns/", "service mode needs MODELPLANE_WEBHOOK_SERVICE"),
    ],
)
def test_a_bad_configuration_says_what_is_wrong(
    mode: str, port: int | None, service: str | None, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        WebhookConfig.of(mode, port, service)


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> None:
    """A TLS handshake in memory; raises ssl.SSLError when the client rejects the server."""
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    server_side = server.wrap_bio(server_in, server_out, server_side=True)
    client_side = client.wrap_bio(client_in, client_out, server_hostname=hostname)
    done = {"server": False, "client": False}
    for _ in range(20):
        for name, side in (("client", client_side), ("server", server_side)):
            if done[name]:
                continue
            try:
                side.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
        client_in.write(server_out.read())
        server_in.write(client_out.read())
        if all(done.values()):
            return
    raise AssertionError("the handshake did not finish")


def contexts(directory: Path, hosts: list[str]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    certs = generate_certificates(hosts, directory)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(certs.certfile, certs.keyfile)
    client = ssl.create_default_context(cadata=certs.ca_pem.decode())
    return server, client


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost"])
def test_the_serving_certificate_verifies_against_the_ca_for_each_host(
    tmp_path: Path, hostname: str
) -> None:
    server, client = contexts(tmp_path, ["127.0.0.1", "localhost"])
    handshake(server, client, hostname)


def test_the_serving_certificate_is_refused_for_other_hosts(tmp_path: Path) -> None:
    server, client = contexts(tmp_path, ["127.0.0.1", "localhost"])
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(server, client, "webhook.modelplane.svc")


def test_the_certificate_names_its_hosts_and_the_key_is_private(tmp_path: Path) -> None:
    certs = generate_certificates(["127.0.0.1", "webhook.ns.svc"], tmp_path / "certs")
    cert = x509.load_pem_x509_certificate(certs.certfile.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["webhook.ns.svc"]
    assert stat.S_IMODE(certs.keyfile.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(certs.ca_pem)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(ca)


def test_service_mode_tells_the_api_server_to_call_the_service() -> None:
    bundle = base64.b64encode(b"pem").decode()
    url_config = {"url": "https://0.0.0.0:9443", "caBundle": bundle}
    assert service_client_config(
        url_config,  # type: ignore[arg-type]
        namespace="modelplane",
        name="webhook",
        port=9443,
    ) == {
        "service": {"namespace": "modelplane", "name": "webhook", "port": 9443},
        "caBundle": bundle,
    }


@pytest.mark.parametrize(
    ("pattern", "served", "not_served"),
    [
        ("!unmanaged-*", ["ml", "test-x"], ["unmanaged-x"]),
        ("ml", ["ml"], ["ml-2", "prod"]),
        ("ml-*, !*-pr-*, *pr-123", ["ml-test", "ml-pr-123"], ["ml-pr-456", "other-pr-123"]),
        ("!*-pr-*, *pr-123", ["ml-test", "other-pr-123"], ["ml-pr-456"]),
    ],
)
def test_the_webhooks_serve_the_namespaces_the_operator_watches(
    pattern: str, served: list[str], not_served: list[str]
) -> None:
    config = WebhookConfig.of("local", None, None, [pattern])
    assert [name for name in served if config.serves(name)] == served
    assert [name for name in not_served if config.serves(name)] == []


def test_without_namespace_patterns_the_webhooks_serve_every_namespace() -> None:
    assert WebhookConfig.of("local", None, None).serves("anything")
    assert WebhookConfig.of("local", None, None, ["a", "b"]).serves("b")
    assert not WebhookConfig.of("local", None, None, ["a"]).serves(None)


# -- a mounted certificate (--webhook-cert-dir) -------------------------------------------

SERVICE = WebhookConfig.of("service", None, "modelplane/webhook")
CALLED_AS = SERVICE.called_as()


def mounted(directory: Path, hosts: list[str] | None = None, **kwargs: datetime) -> bytes:
    """A Secret's files in `directory`: tls.crt and tls.key, and ca.crt; returns the CA PEM."""
    certs = generate_certificates(hosts or SERVICE.hosts(), directory, **kwargs)
    (directory / "ca.crt").write_bytes(certs.ca_pem)
    return certs.ca_pem


def client_trusting(ca_pem: bytes) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca_pem.decode())


def test_a_certificate_directory_needs_service_mode_and_leaves_the_configurations(
    tmp_path: Path,
) -> None:
    """With a mounted certificate kopf manages no webhook configuration; local mode refuses
    one (it registers its own configurations and deletes them when it stops)."""
    config = WebhookConfig.from_env(
        {
            "MODELPLANE_WEBHOOK": "service",
            "MODELPLANE_WEBHOOK_SERVICE": "modelplane/webhook",
            "MODELPLANE_WEBHOOK_CERT_DIR": str(tmp_path),
        }
    )
    assert config.cert_dir == tmp_path
    assert not config.manages_configurations
    assert SERVICE.manages_configurations
    assert not WebhookConfig().manages_configurations
    assert config.called_as() == ["webhook.modelplane.svc"]
    with pytest.raises(ValueError, match="needs service mode, not 'local'"):
        WebhookConfig.of("local", None, None, cert_dir=tmp_path)

    mounted(tmp_path)
    settings = kopf.OperatorSettings()
    configure(settings, config)
    assert settings.admission.managed is None
    assert isinstance(settings.admission.server, MountedCertWebhookServer)
    configure(settings, WebhookConfig.of("local", None, None))
    assert settings.admission.managed == "modelplane.io"


def test_the_server_presents_the_mounted_certificate(tmp_path: Path) -> None:
    ca = mounted(tmp_path)
    cert = read_certificate(tmp_path, CALLED_AS)
    assert "webhook.modelplane.svc" in cert.names
    handshake(MountedCertificate(tmp_path, CALLED_AS).context, client_trusting(ca), CALLED_AS[0])


def test_a_certificate_without_ca_file_is_accepted(tmp_path: Path) -> None:
    """`kubectl create secret tls` makes no ca.crt: the caBundle is then the installer's."""
    mounted(tmp_path)
    (tmp_path / "ca.crt").unlink()
    assert read_certificate(tmp_path, CALLED_AS).names


def broken_by(case: str, directory: Path) -> None:
    mounted(directory)
    other = directory / "other"
    other_ca = mounted(other)
    if case == "no certificate":
        (directory / "tls.crt").unlink()
    elif case == "no key":
        (directory / "tls.key").unlink()
    elif case == "not PEM":
        (directory / "tls.crt").write_text("not a certificate")
    elif case == "encrypted or garbled key":
        (directory / "tls.key").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n")
    elif case == "another key":
        (directory / "tls.key").write_bytes((other / "tls.key").read_bytes())
    elif case == "another CA":
        (directory / "ca.crt").write_bytes(other_ca)
    elif case == "other names":
        mounted(directory, ["webhook.elsewhere.svc"])
    elif case == "expired":
        mounted(directory, now=datetime.now(UTC) - timedelta(days=400))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no certificate", r"tls\.crt is missing"),
        ("no key", r"tls\.key is missing"),
        ("not PEM", r"tls\.crt holds no PEM certificate"),
        ("encrypted or garbled key", r"tls\.key is not an unencrypted PEM private key"),
        ("another key", r"tls\.key is not the key of .*tls\.crt"),
        ("another CA", r"tls\.crt is not issued by .*ca\.crt"),
        ("other names", r"tls\.crt does not name webhook\.modelplane\.svc"),
        ("expired", r"tls\.crt expired at"),
    ],
)
def test_a_certificate_that_cannot_serve_names_its_file(
    tmp_path: Path, case: str, message: str
) -> None:
    broken_by(case, tmp_path)
    with pytest.raises(CertificateError, match=message):
        read_certificate(tmp_path, CALLED_AS)


def test_the_operator_does_not_start_with_a_certificate_that_cannot_serve(
    tmp_path: Path,
) -> None:
    """The command fails at once, naming the file, before it talks to any cluster."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelplane.operator",
            "--webhook=service",
            "--webhook-service=modelplane/webhook",
            f"--webhook-cert-dir={tmp_path}",
            "--metrics-port=0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"webhook certificate file {tmp_path / 'tls.crt'} is missing" in result.stderr


def test_a_renewed_certificate_is_loaded_in_place(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A new certificate in the directory serves the next handshakes, with no restart; a
    broken one is logged once and the last good one keeps serving."""
    old_ca = mounted(tmp_path)
    served = MountedCertificate(tmp_path, CALLED_AS)
    assert not served.reload(), "nothing changed"

    new_ca = mounted(tmp_path)  # a renewal with a new CA: the worst case
    assert served.reload()
    handshake(served.context, client_trusting(new_ca), CALLED_AS[0])
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(served.context, client_trusting(old_ca), CALLED_AS[0])

    good_key = (tmp_path / "tls.key").read_bytes()
    (tmp_path / "tls.key").write_bytes(b"garbage")
    with caplog.at_level(logging.ERROR, logger="modelplane.operator.webhookcerts"):
        assert not served.reload()
        assert not served.reload()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "kept the current webhook certificate" in errors[0].getMessage()
    assert "tls.key" in errors[0].getMessage()
    handshake(served.context, client_trusting(new_ca), CALLED_AS[0])

    (tmp_path / "tls.key").write_bytes(good_key)
    assert not served.reload(), "back to the certificate it serves"
