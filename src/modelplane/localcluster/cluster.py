"""The local control plane: etcd, kube-apiserver, controller-manager, scheduler, kwok, MinIO.

`LocalCluster.up()` builds the binaries on first use, then starts every component on free
loopback ports, with kwok's fake nodes so that Deployments really create ReplicaSets and pods
that become Ready (or, with the never-ready label, never do). A second `up` finds the running
cluster and returns at once; a stale cluster from an earlier run (a dead component, a reboot)
is stopped and replaced. State lives under `~/.cache/modelplane/clusters/<name>/`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import secrets
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

from modelplane.localcluster import kubeconfigs, pki
from modelplane.localcluster.binaries import Binaries, ensure_binaries
from modelplane.localcluster.processes import Component, free_port, start, stop, wait_until
from modelplane.localcluster.state import ClusterState, S3Credentials, cache_home

NEVER_READY_LABEL = "modelplane.io/never-ready"
# Every component a complete cluster runs; a state missing one is a half-started cluster.
COMPONENT_NAMES = frozenset(
    {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "minio"}
)
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
NODE_COUNT = 3
STARTUP_TIMEOUT = 120.0

Progress = Callable[[str], None]


class LocalCluster:
    """One named local control plane."""

    def __init__(self, name: str = "default", home: Path | None = None) -> None:
        self.name = name
        self.directory = (home or cache_home()) / "clusters" / name
        self.pki_dir = self.directory / "pki"
        self.data_dir = self.directory / "data"
        self.log_dir = self.directory / "logs"
        self.state_path = self.directory / "state.json"
        self.kubeconfig = self.directory / "admin.kubeconfig"
        self.ca = pki.CertificateAuthority(self.pki_dir)

    # -- queries ---------------------------------------------------------------------------

    def state(self) -> ClusterState | None:
        return ClusterState.load(self.state_path)

    def running(self) -> bool:
        """True when every recorded component is alive and the API server is ready."""
        state = self.state()
        if state is None or {c.name for c in state.components} != COMPONENT_NAMES:
            return False
        if not all(c.alive() for c in state.components):
            return False
        return self._apiserver_ready(state.ports["apiserver"])

    def kubectl_path(self) -> Path:
        state = self.state()
        if state is None:
            raise RuntimeError(f"cluster {self.name!r} is not running: run `modelplane cluster up`")
        return Path(state.binaries["kubectl"])

    def s3(self) -> S3Credentials:
        state = self.state()
        if state is None or state.s3 is None:
            raise RuntimeError(f"cluster {self.name!r} is not running: run `modelplane cluster up`")
        return state.s3

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig that authenticates as `user` (client certificate CN) in `groups`."""
        state = self.state()
        if state is None:
            raise RuntimeError(f"cluster {self.name!r} is not running")
        stem = "user-" + "-".join((user, *groups)).replace(":", "_").replace("/", "_")
        pair = self.ca.issue(stem, user, organizations=groups)
        path = self.directory / f"{stem}.kubeconfig"
        kubeconfigs.write(path, self._server(state.ports["apiserver"]), self.ca.cert_path, pair)
        return path

    # -- lifecycle -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise `up` and `down` across processes (parallel test runs share a cluster)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def up(self, progress: Progress = print) -> ClusterState:
        """Start the cluster, or return the one already running."""
        binaries = ensure_binaries()
        with self._locked():
            return self._up(binaries, progress)

    def _up(self, binaries: Binaries, progress: Progress) -> ClusterState:
        wanted = {k: str(v) for k, v in binaries.paths.items()}
        state = self.state()
        if state is not None and state.binaries == wanted and self.running():
            progress(f"cluster {self.name!r} is already running")
            return state
        if state is not None:
            progress(f"cluster {self.name!r}: stopping a stale cluster from an earlier run")
            self._down()
        started = time.monotonic()
        state = self._start(binaries, progress)
        progress(f"cluster {self.name!r} ready in {time.monotonic() - started:.1f}s")
        return state

    def down(self, progress: Progress = print) -> None:
        """Stop every component and delete the cluster's data (certificates are kept)."""
        with self._locked():
            self._down()
        progress(f"cluster {self.name!r} stopped")

    def _down(self) -> None:
        state = self.state()
        if state is not None:
            # The reverse of start order, so nothing logs errors about the API server going.
            for component in reversed(state.components):
                stop(component)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.state_path.unlink(missing_ok=True)

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _server(port: int) -> str:
        return f"https://127.0.0.1:{port}"

    def _ssl_context(self) -> ssl.SSLContext:
        admin = self.ca.issue("admin", "modelplane-admin", organizations=("system:masters",))
        ctx = ssl.create_default_context(cafile=str(self.ca.cert_path))
        ctx.load_cert_chain(str(admin.cert_path), str(admin.key_path))
        return ctx

    def _apiserver_ready(self, port: int) -> bool:
        return _http_ok(f"{self._server(port)}/readyz", self._ssl_context())

    def _start(self, binaries: Binaries, progress: Progress) -> ClusterState:
        for d in (self.pki_dir, self.data_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        ports = {
            name: free_port()
            for name in (
                "etcd",
                "etcd-peer",
                "apiserver",
                "controller-manager",
                "scheduler",
                "kwok",
                "s3",
                "s3-console",
            )
        }
        state = ClusterState(binaries={k: str(v) for k, v in binaries.paths.items()}, ports=ports)
        self.ca.ensure()
        sa_key, sa_pub = pki.ensure_service_account_key(self.pki_dir)
        serving = self.ca.issue(
            "apiserver",
            "kube-apiserver",
            dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
            ip_addresses=("127.0.0.1", "10.96.0.1"),
            server=True,
        )
        server = self._server(ports["apiserver"])
        admin = self.ca.issue("admin", "modelplane-admin", organizations=("system:masters",))
        kubeconfigs.write(self.kubeconfig, server, self.ca.cert_path, admin)

        try:
            self._start_etcd(binaries, state)
            progress("etcd is up")
            self._start_apiserver(binaries, state, serving, sa_key, sa_pub)
            progress(f"kube-apiserver is ready at {server}")
            self._start_controllers(binaries, state, sa_key, server)
            progress("kube-controller-manager and kube-scheduler started")
            self._start_kwok(binaries, state, server)
            self._start_minio(binaries, state)
            progress(
                f"S3-compatible store (MinIO) is up at {state.s3.endpoint_url if state.s3 else ''}"
            )
            self._create_nodes(binaries)
            progress(f"{NODE_COUNT} kwok nodes are Ready")
        except BaseException:
            state.save(self.state_path)  # so `down` can stop what did start
            raise
        state.save(self.state_path)
        return state

    def _launch(
        self, state: ClusterState, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> tuple[Component, Path]:
        log = self.log_dir / f"{name}.log"
        component = start(name, argv, log, env)
        state.components.append(component)
        return component, log

    def _start_etcd(self, binaries: Binaries, state: ClusterState) -> None:
        client = f"http://127.0.0.1:{state.ports['etcd']}"
        peer = f"http://127.0.0.1:{state.ports['etcd-peer']}"
        component, log = self._launch(
            state,
            "etcd",
            [
                str(binaries["etcd"]),
                "--name=modelplane",
                f"--data-dir={self.data_dir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=modelplane={peer}",
                # A throwaway test store: durability is not worth the fsync latency.
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        wait_until(
            "etcd health",
            lambda: _http_ok(f"{client}/health", None),
            STARTUP_TIMEOUT,
            component,
            log,
        )

    def _start_apiserver(
        self,
        binaries: Binaries,
        state: ClusterState,
        serving: pki.KeyPair,
        sa_key: Path,
        sa_pub: Path,
    ) -> None:
        component, log = self._launch(
            state,
            "kube-apiserver",
            [
                str(binaries["kube-apiserver"]),
                f"--etcd-servers=http://127.0.0.1:{state.ports['etcd']}",
                "--bind-address=127.0.0.1",
                # There is no default route on these machines; without it the server cannot
                # pick an address to advertise and refuses to start.
                "--advertise-address=127.0.0.1",
                f"--secure-port={state.ports['apiserver']}",
                f"--tls-cert-file={serving.cert_path}",
                f"--tls-private-key-file={serving.key_path}",
                f"--client-ca-file={self.ca.cert_path}",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
            ],
        )
        wait_until(
            "kube-apiserver /readyz",
            lambda: self._apiserver_ready(state.ports["apiserver"]),
            STARTUP_TIMEOUT,
            component,
            log,
        )

    def _start_controllers(
        self, binaries: Binaries, state: ClusterState, sa_key: Path, server: str
    ) -> None:
        self._start_control_loop(
            binaries,
            state,
            server=server,
            name="kube-controller-manager",
            user="system:kube-controller-manager",
            extra=[
                # Each controller acts as its own ServiceAccount, as in a real cluster.
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={self.ca.cert_path}",
            ],
        )
        self._start_control_loop(
            binaries,
            state,
            server=server,
            name="kube-scheduler",
            user="system:kube-scheduler",
            extra=[],
        )

    def _start_control_loop(
        self,
        binaries: Binaries,
        state: ClusterState,
        *,
        server: str,
        name: str,
        user: str,
        extra: list[str],
    ) -> None:
        """Start the controller-manager or the scheduler, authenticated as `user`."""
        short = name.removeprefix("kube-")
        pair = self.ca.issue(short, user)
        config = self.directory / f"{short}.kubeconfig"
        kubeconfigs.write(config, server, self.ca.cert_path, pair)
        self._launch(
            state,
            name,
            [
                str(binaries[name]),
                f"--kubeconfig={config}",
                f"--authentication-kubeconfig={config}",
                f"--authorization-kubeconfig={config}",
                "--bind-address=127.0.0.1",
                f"--secure-port={state.ports[short]}",
                "--leader-elect=false",
                "--v=1",
                *extra,
            ],
        )

    def _start_kwok(self, binaries: Binaries, state: ClusterState, server: str) -> None:
        pair = self.ca.issue("kwok", "kwok-controller", organizations=("system:masters",))
        config = self.directory / "kwok.kubeconfig"
        kubeconfigs.write(config, server, self.ca.cert_path, pair)
        stages = self.directory / "kwok-stages.yaml"
        stages.write_text(
            (resources.files("modelplane.localcluster") / "kwok-stages.yaml").read_text()
        )
        self._launch(
            state,
            "kwok",
            [
                str(binaries["kwok"]),
                f"--kubeconfig={config}",
                f"--config={stages}",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                "--node-lease-duration-seconds=40",
                "--cidr=10.244.0.0/16",
                "--node-ip=10.0.0.1",
                f"--server-address=127.0.0.1:{state.ports['kwok']}",
            ],
        )

    def _start_minio(self, binaries: Binaries, state: ClusterState) -> None:
        creds = S3Credentials(
            endpoint_url=f"http://127.0.0.1:{state.ports['s3']}",
            access_key="modelplane-" + secrets.token_hex(4),
            secret_key=secrets.token_urlsafe(24),
        )
        component, log = self._launch(
            state,
            "minio",
            [
                str(binaries["minio"]),
                "server",
                str(self.data_dir / "s3"),
                f"--address=127.0.0.1:{state.ports['s3']}",
                f"--console-address=127.0.0.1:{state.ports['s3-console']}",
                "--quiet",
            ],
            env={
                "MINIO_ROOT_USER": creds.access_key,
                "MINIO_ROOT_PASSWORD": creds.secret_key,
                "MINIO_BROWSER": "off",
                "MINIO_UPDATE": "off",
            },
        )
        wait_until(
            "MinIO liveness",
            lambda: _http_ok(f"{creds.endpoint_url}/minio/health/ready", None),
            STARTUP_TIMEOUT,
            component,
            log,
        )
        state.s3 = creds

    def _create_nodes(self, binaries: Binaries) -> None:
        nodes = [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": f"kwok-node-{i}",
                    "annotations": {FAKE_NODE_ANNOTATION: "fake"},
                    "labels": {
                        "type": "kwok",
                        "kubernetes.io/hostname": f"kwok-node-{i}",
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                    },
                },
            }
            for i in range(NODE_COUNT)
        ]
        kubectl = [str(binaries["kubectl"]), f"--kubeconfig={self.kubeconfig}"]
        manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes})
        subprocess.run(  # noqa: S603
            [*kubectl, "apply", "-f", "-"],
            input=manifest,
            text=True,
            check=True,
            capture_output=True,
        )
        subprocess.run(  # noqa: S603
            [*kubectl, "wait", "--for=condition=Ready", "node", "--all", "--timeout=120s"],
            text=True,
            check=True,
            capture_output=True,
        )
        # Pods can only be created once the namespace's default ServiceAccount exists.
        wait_until(
            "the default ServiceAccount",
            lambda: (
                subprocess.run(  # noqa: S603
                    [*kubectl, "get", "serviceaccount", "default", "-n", "default"],
                    capture_output=True,
                    check=False,
                ).returncode
                == 0
            ),
            STARTUP_TIMEOUT,
        )


def _http_ok(url: str, context: ssl.SSLContext | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310
            status: int = response.status
            return status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False
