"""Shared helpers of the benchmarks: statistics, result files, the cluster and the operator.

The statistics are pure (tested in `tests/bench`); the rest starts the benchmark's own local
control plane (`LocalCluster("bench")`) and the operator as a real process, as a user runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
CLUSTER_NAME = "bench"


# -- statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation between closest ranks (numpy's
    default), so p50 of an even count is the mean of the middle two."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high or ordered[low] == ordered[high]:
        return ordered[low]
    if math.isinf(ordered[high]):  # an infinite (censored) sample: the percentile is unbounded
        return math.inf
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Distribution:
    """The summary of a sample that the tables report."""

    count: int
    min: float
    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution:
        return cls(
            count=len(values),
            min=min(values),
            p50=percentile(values, 50),
            p90=percentile(values, 90),
            p99=percentile(values, 99),
            max=max(values),
            mean=sum(values) / len(values),
        )

    def scaled(self, factor: float) -> Distribution:
        """The same distribution in another unit (e.g. seconds to milliseconds)."""
        return Distribution(
            self.count,
            self.min * factor,
            self.p50 * factor,
            self.p90 * factor,
            self.p99 * factor,
            self.max * factor,
            self.mean * factor,
        )


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (pastes into BENCHMARKS.md as printed); floats get 3 significant
    decimals of their magnitude."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
        return str(value)

    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


DISTRIBUTION_HEADERS = ("n", "min", "p50", "p90", "p99", "max")


def distribution_row(d: Distribution) -> list[Any]:
    return [d.count, d.min, d.p50, d.p90, d.p99, d.max]


# -- results ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Where and under what load the benchmark ran."""
    load = os.getloadavg()
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_1_5_15": [round(x, 2) for x in load],
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_state(),
    }


def git_state() -> str:
    """The commit benchmarked, and whether src/ had uncommitted changes (the operator and SDK
    run from the working tree)."""

    def git(*args: str) -> str:
        return subprocess.run(  # noqa: S603 - fixed arguments
            ["git", *args],  # noqa: S607 - git from PATH, as a developer runs it
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()

    dirty = git("status", "--porcelain", "--", "src")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes in src/" if dirty else "")


_STARTED: dict[str, Any] = {}
"""The machine's state when the benchmark parsed its arguments (its start)."""


def machine_at_start() -> dict[str, Any]:
    return _STARTED or machine()


@dataclass
class Results:
    """What one benchmark writes to bench/results/<name>.json."""

    name: str
    quick: bool
    data: dict[str, Any] = field(default_factory=dict)
    machine_before: dict[str, Any] = field(default_factory=machine_at_start)

    def write(self) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        body = {
            "benchmark": self.name,
            "quick": self.quick,
            "command": " ".join(
                ["uv run python -m", f"bench.{Path(sys.argv[0]).stem}", *sys.argv[1:]]
            ),
            "machine_before": self.machine_before,
            "machine_after": machine(),
            **self.data,
        }
        path.write_text(json.dumps(body, indent=2, default=_jsonable) + "\n")
        print(f"\nwrote {path.relative_to(REPO)}")
        return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Distribution):
        return value.__dict__
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def arguments(
    description: str | None, extra: Callable[[argparse.ArgumentParser], object] | None = None
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run, for development")
    parser.add_argument(
        "--down",
        action="store_true",
        help="stop the bench cluster at the end (by default it stays up for the next benchmark)",
    )
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    _STARTED.update(machine())
    return args


def cluster_option(parser: argparse.ArgumentParser) -> None:
    """``--cluster NAME``: the local control plane a benchmark uses."""
    parser.add_argument(
        "--cluster",
        default=CLUSTER_NAME,
        help="the local control plane to use (default: %(default)s, shared with the other "
        "benchmarks); another name starts one of its own",
    )


# -- the cluster and the operator ------------------------------------------------------------


def bench_cluster(name: str = CLUSTER_NAME) -> Any:
    """The benchmarks' own local control plane, started (or reused) and with the CRDs.

    Another `name` gives a benchmark a control plane of its own, away from the others."""
    from modelplane.localcluster.cluster import LocalCluster  # noqa: PLC0415 - heavy import

    cluster = LocalCluster(name)
    cluster.up(progress=lambda line: print(f"[cluster] {line}"))
    kubectl = str(cluster.kubectl_path())
    crds = sorted((REPO / "crds").glob("*.yaml"))
    for path in crds:
        subprocess.run(  # noqa: S603 - our own kubectl with fixed arguments
            [
                kubectl,
                f"--kubeconfig={cluster.kubeconfig}",
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                str(path),
            ],
            check=True,
            capture_output=True,
        )
    subprocess.run(  # noqa: S603
        [
            kubectl,
            f"--kubeconfig={cluster.kubeconfig}",
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            *(f"-f={p}" for p in crds),
        ],
        check=True,
        capture_output=True,
    )
    return cluster


def small_artifact(cluster: Any, bucket: str, content: bytes) -> tuple[str, str]:
    """Upload `content` as `model.bin` to `bucket` of the cluster's store (the bucket is made if
    missing); returns its URI and its sha256 digest, for ModelVersions that must verify."""
    from modelplane.store import StoreConfig  # noqa: PLC0415 - heavy import
    from modelplane.store.s3 import make_client  # noqa: PLC0415

    s3 = make_client(StoreConfig.from_env(cluster.s3().env()))
    with contextlib.suppress(Exception):  # there from an earlier run
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="model.bin", Body=content)
    return f"s3://{bucket}/model.bin", "sha256:" + hashlib.sha256(content).hexdigest()


def api_client(cluster: Any) -> Any:
    from kubernetes import config  # noqa: PLC0415

    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


def free_port() -> int:
    from modelplane.localcluster.processes import free_port as free  # noqa: PLC0415

    return free()


class Operator:
    """`python -m modelplane.operator` as a child process, over all namespaces or one."""

    def __init__(
        self,
        cluster: Any,
        log_path: Path,
        *,
        webhook: bool = True,
        namespace: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.cluster = cluster
        self.env = env or {}
        self.scope = f"--namespace={namespace}" if namespace else "--all-namespaces"
        self.log_path = log_path
        self.webhook = webhook
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the operator is not running")
        return self.process.pid

    def start(self, timeout: float = 120) -> float:
        """Start it and wait until it is live; returns the seconds that took."""
        started = time.monotonic()
        env = {**os.environ, **self.cluster.s3().env(), "KUBECONFIG": str(self.cluster.kubeconfig)}
        env.update(self.env)
        if self.webhook:
            env["MODELPLANE_WEBHOOK"] = "local"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [
                    sys.executable,
                    "-m",
                    "modelplane.operator",
                    self.scope,
                    f"--metrics-port={self.metrics_port}",
                    f"--liveness=http://127.0.0.1:{self.liveness_port}/healthz",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the operator exited:\n{self.log_tail()}")
            if self._live():
                return time.monotonic() - started
            time.sleep(0.1)
        raise TimeoutError(f"the operator did not become live:\n{self.log_tail()}")

    def _live(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.liveness_port}/healthz"
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def metrics(self) -> dict[str, float]:
        """The operator's Prometheus samples, by sample name with labels."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as response:
            return parse_prometheus(response.read().decode())

    def rss_mib(self) -> float:
        """VmRSS of the operator process, in MiB."""
        return rss_mib(self.pid)

    def peak_rss_mib(self) -> float:
        """VmHWM of the operator process (its highest RSS so far), in MiB."""
        return rss_mib(self.pid, "VmHWM")

    def cpu_seconds(self) -> float:
        """User + system CPU time the operator process has used so far."""
        return process_cpu_seconds(self.pid)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of a process from /proc/<pid>/status, in MiB: VmRSS by default, or e.g.
    VmHWM (the peak RSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def parse_prometheus(text: str) -> dict[str, float]:
    """Prometheus text exposition as {'name{labels}': value}; comments are skipped."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            samples[name] = float(value)
        except ValueError:
            continue
    return samples


def sum_samples(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of every sample of metric `name` whose labels include `labels`."""
    total = 0.0
    for key, value in samples.items():
        metric, _, rest = key.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
    return total


def finish(cluster: Any, args: argparse.Namespace) -> None:
    """Stop the bench cluster when asked to (`--down`)."""
    if args.down:
        cluster.down(progress=lambda line: print(f"[cluster] {line}"))
    else:
        print("the bench cluster stays up; `--down` (or `python -m bench.teardown`) stops it")
