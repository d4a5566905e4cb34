"""Artifact verification throughput: `verify_artifact` on a 1 GiB S3 object vs a raw GET.

Uploads one random 1 GiB object (multipart) to the bench cluster's MinIO once, then runs a few
rounds of these reads, rotating their order each round so all see the same machine load:

- `verify_artifact` (stat + streamed sha256 through `S3Store.digest`, which hashes in a second
  thread while the socket is read);
- the same stat and sha256 with reading and hashing in turn in one thread (the store before);
- raw GET, ``read()``: boto3's streaming body read in 8 MiB chunks, bytes discarded;
- raw GET, ``readinto``: the fastest single-stream read we know, the socket read into one reused
  8 MiB buffer (no new bytes object per chunk), bytes discarded;
- 4 ranged GETs in parallel (context only: a reader that splits the object);
- sha256 of an in-memory buffer: what the hash alone costs on this CPU.

The ratio is taken per round: verify against the faster of the two single-stream raw reads of
that round. Each read also records the CPU time MinIO and this process spent (from
/proc/<pid>/stat and os.times) and the cores everything else on the machine used meanwhile; on a
shared 2-core machine that decides the figures, so the rounds in which other processes used at
most `QUIET` cores are also summarised on their own.
Target: verify >= 80 % of the raw read throughput.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    Distribution,
    Results,
    arguments,
    bench_cluster,
    cluster_option,
    finish,
    process_cpu_seconds,
    table,
)

BUCKET = "bench-artifacts"
PART = 64 * 1024 * 1024
CHUNK = 8 * 1024 * 1024
RANGES = 4
TARGET = 0.80
# A round is quiet when other processes used at most this many cores during both reads compared.
QUIET = 0.25
TICK = os.sysconf("SC_CLK_TCK")
VERIFY = "verify_artifact"
IN_TURN = "stat + sha256, read and hash in turn"
RAW_READ = "raw GET, read()"
RAW_READINTO = "raw GET, readinto"
RAW_RANGES = f"raw, {RANGES} ranged GETs in parallel"
HASH = "sha256 only (in memory)"


def upload(s3: Any, key: str, size: int) -> str:
    """Upload `size` random bytes as `key` (multipart) unless an object of that size is there;
    returns its sha256 digest (kept in the object's metadata)."""
    try:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        if head["ContentLength"] == size and "sha256" in head["Metadata"]:
            return str(head["Metadata"]["sha256"])
    except s3.exceptions.ClientError:
        pass
    hasher = hashlib.sha256()
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    parts = []
    for number, offset in enumerate(range(0, size, PART), start=1):
        data = os.urandom(min(PART, size - offset))
        hasher.update(data)
        answer = s3.upload_part(
            Bucket=BUCKET, Key=key, PartNumber=number, UploadId=upload_id, Body=data
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    digest = "sha256:" + hasher.hexdigest()
    # Copy onto itself to record the digest, so a rerun skips the upload.
    s3.copy_object(
        Bucket=BUCKET,
        Key=key,
        CopySource={"Bucket": BUCKET, "Key": key},
        Metadata={"sha256": digest},
        MetadataDirective="REPLACE",
    )
    return digest


def raw_read(s3: Any, key: str) -> int:
    """A plain boto3 streaming GET, bytes discarded; returns the bytes read."""
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
    total = 0
    try:
        while chunk := body.read(CHUNK):
            total += len(chunk)
    finally:
        body.close()
    return total


def raw_readinto(s3: Any, key: str, byte_range: str | None = None) -> int:
    """A GET read from the socket into one reused buffer, bytes discarded (what `S3Store`
    does when it hashes); returns the bytes read."""
    from modelplane.store.s3 import _http_streams  # noqa: PLC0415 - the store's own access

    extra = {"Range": byte_range} if byte_range else {}
    body = s3.get_object(Bucket=BUCKET, Key=key, **extra)["Body"]
    streams = _http_streams(body)
    if streams is None:
        raise RuntimeError("the boto3 body is not over http.client: cannot readinto")
    buffer = memoryview(bytearray(CHUNK))
    total = 0
    try:
        while count := streams[1].readinto(buffer):
            total += count
    finally:
        body.close()
    return total


def hash_in_turn(s3: Any, key: str) -> int:
    """What `verify_artifact` did before it overlapped: a stat, then one thread that reads into
    one 8 MiB buffer and hashes it in turn; returns the bytes hashed."""
    from modelplane.store.digests import hash_into  # noqa: PLC0415
    from modelplane.store.s3 import _http_streams  # noqa: PLC0415 - the store's own access

    s3.head_object(Bucket=BUCKET, Key=key)
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
    streams = _http_streams(body)
    if streams is None:
        raise RuntimeError("the boto3 body is not over http.client: cannot readinto")
    try:
        return hash_into(streams[1].readinto, "sha256", CHUNK).bytes_read
    finally:
        body.close()


def ranged_reads(s3: Any, key: str, size: int) -> int:
    """`RANGES` ranged GETs at once, each read with `raw_readinto`; returns the bytes read."""
    step = -(-size // RANGES)
    ranges = [f"bytes={start}-{min(start + step, size) - 1}" for start in range(0, size, step)]
    with ThreadPoolExecutor(RANGES) as pool:
        return sum(pool.map(lambda r: raw_readinto(s3, key, r), ranges))


def hash_only(size: int) -> int:
    """sha256 of `size` bytes already in memory, in 8 MiB updates; returns `size`."""
    block = os.urandom(CHUNK)
    hasher = hashlib.sha256()
    for _ in range(size // CHUNK):
        hasher.update(block)
    return size


# -- CPU accounting --------------------------------------------------------------------------


def machine_busy() -> float:
    """CPU seconds every core of the machine has spent busy so far (not idle, not iowait)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / TICK


@dataclass(frozen=True)
class Sample:
    """One timed read: wall seconds, and the CPU seconds each party spent meanwhile."""

    seconds: float
    minio_cpu: float
    client_user: float
    client_system: float
    others_cpu: float
    """Every other process on the machine (other engineers' work, the cluster's API server)."""


def measure(read: Callable[[], int], size: int, minio_pid: int) -> Sample:
    busy, minio, client = machine_busy(), process_cpu_seconds(minio_pid), os.times()
    started = time.perf_counter()
    if read() != size:
        raise RuntimeError("short read")
    seconds = time.perf_counter() - started
    busy, minio = machine_busy() - busy, process_cpu_seconds(minio_pid) - minio
    after = os.times()
    user, system = after.user - client.user, after.system - client.system
    return Sample(seconds, minio, user, system, max(0.0, busy - minio - user - system))


def round_ratios(
    samples: dict[str, list[Sample]], throughput: dict[str, list[float]], name: str
) -> list[tuple[float, float]]:
    """Per round: `name` against the faster of that round's single-stream raw reads, and the
    most cores other processes used during either of the two."""
    pairs = []
    for index, speed in enumerate(throughput[name]):
        raw = max((RAW_READ, RAW_READINTO), key=lambda raw: throughput[raw][index])
        others = max(
            sample.others_cpu / sample.seconds
            for sample in (samples[name][index], samples[raw][index])
        )
        pairs.append((speed / throughput[raw][index], others))
    return pairs


# -- the run ---------------------------------------------------------------------------------


def options(parser: argparse.ArgumentParser) -> None:
    cluster_option(parser)
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds of reads (default 7, or 3 with --quick)"
    )
    parser.add_argument(
        "--results",
        default=None,
        metavar="NAME",
        help="write bench/results/NAME.json (default: artifact_verification[_quick])",
    )


def main() -> None:
    args = arguments(__doc__, options)
    from modelplane.store import S3Store, StoreConfig, verify_artifact  # noqa: PLC0415
    from modelplane.store.s3 import make_client  # noqa: PLC0415

    size = (256 if args.quick else 1024) * 1024 * 1024
    rounds = args.rounds or (3 if args.quick else 15)
    cluster = bench_cluster(args.cluster)
    state = cluster.state()
    minio_pid = next(c.pid for c in state.components if c.name == "minio")
    config = StoreConfig.from_env(cluster.s3().env())
    s3 = make_client(config)
    with contextlib.suppress(s3.exceptions.ClientError):  # there from an earlier run
        s3.create_bucket(Bucket=BUCKET)
    key = f"artifact-{size // 2**20}MiB.bin"
    started = time.perf_counter()
    digest = upload(s3, key, size)
    print(
        f"object s3://{BUCKET}/{key}: {size / 2**20:.0f} MiB ready in "
        f"{time.perf_counter() - started:.1f} s"
    )
    store = S3Store(config, client=s3)
    uri = f"s3://{BUCKET}/{key}"

    def verify() -> int:
        result = verify_artifact(uri, digest, expected_size=size, store=store)
        if not result.verified:
            raise RuntimeError(f"verification failed: {result.message}")
        return size

    reads: dict[str, Callable[[], int]] = {
        VERIFY: verify,
        IN_TURN: lambda: hash_in_turn(s3, key),
        RAW_READ: lambda: raw_read(s3, key),
        RAW_READINTO: lambda: raw_readinto(s3, key),
        RAW_RANGES: lambda: ranged_reads(s3, key, size),
        HASH: lambda: hash_only(size),
    }
    names = list(reads)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for index in range(rounds):
        # Rotate the order, so no read always runs first (or right after the hash).
        for name in names[index % len(names) :] + names[: index % len(names)]:
            samples[name].append(measure(reads[name], size, minio_pid))
        print(
            f"round {index + 1} (load {os.getloadavg()[0]:.2f}): "
            + ", ".join(f"{name} {samples[name][-1].seconds:.2f} s" for name in names)
        )

    mib, gib = size / 2**20, size / 2**30
    throughput = {name: [mib / s.seconds for s in taken] for name, taken in samples.items()}
    ratios = {name: round_ratios(samples, throughput, name) for name in (VERIFY, IN_TURN)}
    print(f"\n{mib:.0f} MiB object, {rounds} rounds in rotating order (MiB/s)\n")
    print(
        table(
            ["read", "n", "min", "p50", "max"],
            [
                [name, len(v), min(v), Distribution.of(v).p50, max(v)]
                for name, v in throughput.items()
            ],
        )
    )

    def per_gib(name: str, part: str) -> float:
        return sum(getattr(s, part) for s in samples[name]) / len(samples[name]) / gib

    def others(name: str) -> float:
        return sum(s.others_cpu for s in samples[name]) / sum(s.seconds for s in samples[name])

    print("\nCPU seconds per GiB read (mean), and the cores all other processes used meanwhile\n")
    cpu_rows = [
        [
            name,
            per_gib(name, "minio_cpu"),
            per_gib(name, "client_user"),
            per_gib(name, "client_system"),
            per_gib(name, "minio_cpu")
            + per_gib(name, "client_user")
            + per_gib(name, "client_system"),
            per_gib(name, "seconds"),
            others(name),
        ]
        for name in names
    ]
    print(
        table(
            ["read", "MinIO", "client user", "client sys", "total", "wall s/GiB", "others (cores)"],
            cpu_rows,
        )
    )
    print()
    summary: dict[str, Any] = {}
    for name, pairs in ratios.items():
        quiet = [ratio for ratio, others in pairs if others <= QUIET]
        summary[name] = {
            "per_round": [{"ratio": ratio, "others_cores": others} for ratio, others in pairs],
            "median": Distribution.of([ratio for ratio, _ in pairs]).p50,
            "quiet_rounds": len(quiet),
            "quiet_median": Distribution.of(quiet).p50 if quiet else None,
        }
        print(
            f"{name} / raw, per round: "
            + ", ".join(f"{ratio:.0%} ({others:.2f})" for ratio, others in sorted(pairs))
            + f"; median {summary[name]['median']:.1%}"
            + (
                f"; quiet rounds ({len(quiet)}) {summary[name]['quiet_median']:.1%}"
                if quiet
                else ""
            )
        )
    met = summary[VERIFY]["quiet_median"] is not None and summary[VERIFY]["quiet_median"] >= TARGET
    print(
        f"(others: the cores other processes used during the pair; quiet: <= {QUIET} cores)\n"
        f"target: verify >= 80 % of raw in quiet rounds: {'met' if met else 'NOT met'}"
    )
    name = args.results or (
        "artifact_verification_quick" if args.quick else "artifact_verification"
    )
    results = Results(name, args.quick)
    results.data = {
        "cluster": args.cluster,
        "object_bytes": size,
        "rounds": rounds,
        "chunk_bytes": CHUNK,
        "mib_per_s": {name: Distribution.of(v) for name, v in throughput.items()},
        "samples": {name: [s.__dict__ for s in taken] for name, taken in samples.items()},
        "cpu_seconds_per_gib": {
            row[0]: {"minio": row[1], "client_user": row[2], "client_system": row[3]}
            for row in cpu_rows
        },
        "others_cores": {row[0]: row[6] for row in cpu_rows},
        "ratio_to_raw": summary,
        "quiet_cores": QUIET,
        "target": TARGET,
        "met": met,
    }
    results.write()
    finish(cluster, args)


if __name__ == "__main__":
    main()
