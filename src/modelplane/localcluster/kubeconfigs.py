"""Writing kubeconfig files that authenticate with a client certificate."""

from __future__ import annotations

from pathlib import Path

import yaml

from modelplane.localcluster.pki import KeyPair


def write(
    path: Path, server: str, ca_path: Path, client: KeyPair, name: str = "modelplane"
) -> None:
    """Write a kubeconfig for `server` with one context, `name`, as the certificate's user."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority": str(ca_path)}}
        ],
        "users": [
            {
                "name": name,
                "user": {
                    "client-certificate": str(client.cert_path),
                    "client-key": str(client.key_path),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
