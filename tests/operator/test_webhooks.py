"""The webhook server's configuration and certificates (no cluster needed)."""

from __future__ import annotations

import base64
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from modelplane.operator.webhooks import (
    DisabledWebhooks,
    WebhookConfig,
    build_server,
    generate_certificates,
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
