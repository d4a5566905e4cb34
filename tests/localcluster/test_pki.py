"""Certificates name the identity the API server will see."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from modelplane.localcluster import pki


def test_client_certificate_carries_user_and_groups(tmp_path: Path) -> None:
    """CN is the user name and each O a group, as Kubernetes reads them."""
    ca = pki.CertificateAuthority(tmp_path)
    ca.ensure()
    pair = ca.issue("bob", "bob", organizations=("ml-approvers", "dev"))
    cert = x509.load_pem_x509_certificate(pair.cert_path.read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "bob"
    groups = {a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)}
    assert groups == {"ml-approvers", "dev"}
    ca_cert = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
    cert.verify_directly_issued_by(ca_cert)
    assert pair.key_path.stat().st_mode & 0o777 == 0o600


def test_serving_certificate_names_loopback(tmp_path: Path) -> None:
    """The API server's certificate is valid for 127.0.0.1 and localhost."""
    ca = pki.CertificateAuthority(tmp_path)
    ca.ensure()
    pair = ca.issue(
        "srv", "srv", dns_names=("localhost",), ip_addresses=("127.0.0.1",), server=True
    )
    cert = x509.load_pem_x509_certificate(pair.cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_issue_reuses_existing_files(tmp_path: Path) -> None:
    """Issuing twice returns the same certificate rather than rotating it."""
    ca = pki.CertificateAuthority(tmp_path)
    ca.ensure()
    first = ca.issue("x", "x").cert_path.read_bytes()
    assert ca.issue("x", "x").cert_path.read_bytes() == first
