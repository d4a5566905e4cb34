"""Kubeconfig loading, the default namespace, and the API server's messages, without a cluster."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s

from modelplane.cli.errors import CommandError
from modelplane.cli.kubeaccess import connect, server_message
from modelplane.cli.main import main


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_kubeconfig(path: Path, server: str) -> Path:
    def context(name: str, namespace: str | None) -> dict[str, object]:
        body: dict[str, object] = {"cluster": "local", "user": "admin"}
        if namespace is not None:
            body["namespace"] = namespace
        return {"name": name, "context": body}

    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": {"server": server}}],
                "users": [{"name": "admin", "user": {"token": "t"}}],
                "contexts": [context("ml", "ml"), context("plain", None)],
                "current-context": "ml",
            }
        )
    )
    return path


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{closed_port()}")


def test_the_namespace_is_the_flag_else_the_contexts_else_default(kubeconfig: Path) -> None:
    assert connect(str(kubeconfig), None).namespace == "ml"
    assert connect(str(kubeconfig), "other").namespace == "other"
    assert connect(str(kubeconfig), None, context="plain").namespace == "default"


def test_an_unknown_context_or_kubeconfig_is_an_error(kubeconfig: Path, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="context nope is not in the kubeconfig"):
        connect(str(kubeconfig), None, context="nope")
    with pytest.raises(CommandError, match="cannot load the kubeconfig"):
        connect(str(tmp_path / "missing"), None)


def test_an_unreachable_api_server_is_one_clear_line(
    kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "list", "--kubeconfig", str(kubeconfig)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot list modelversions: cannot reach the API server at ")
    assert len(err.strip().splitlines()) == 1


def api_exception(status: int, reason: str, body: str | bytes | None) -> k8s.ApiException:
    error = k8s.ApiException(status=status, reason=reason)
    error.body = body
    return error


def test_the_servers_message_is_passed_on_word_for_word() -> None:
    denial = (
        'admission webhook "approvals.modelplane.io" denied the request: '
        "'alice' requested version 4 and cannot approve their own change"
    )
    body = json.dumps({"kind": "Status", "status": "Failure", "message": denial, "code": 400})
    assert server_message(api_exception(400, "Bad Request", body)) == denial
    assert server_message(api_exception(400, "Bad Request", body.encode())) == denial
    assert server_message(api_exception(502, "Bad Gateway", "upstream down\n")) == "upstream down"
    assert server_message(api_exception(503, "Service Unavailable", None)) == (
        "503 Service Unavailable"
    )
