"""Artifact verification throughput: `verify_artifact` on a 1 GiB S3 object vs a raw GET.

Uploads one random 1 GiB object (multipart) to the bench cluster's MinIO once, then alternates
`verify_artifact` (stat + streamed sha256 in 8 MiB chunks) with a plain boto3 streaming GET that
discards the bytes, a few rounds, so both see the same machine load. A third measurement, sha256
of an in-memory buffer, shows what the hash alone costs on this CPU. Target: verify >= 80 % of
the raw read throughput.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from typing import Any

from bench.common import Results, arguments, bench_cluster, finish, table

BUCKET = "bench-artifacts"
PART = 64 * 1024 * 1024
CHUNK = 8 * 1024 * 1024
TARGET = 0.80


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
    """A plain streaming GET, bytes discarded; returns the bytes read."""
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
    total = 0
    try:
        while chunk := body.read(CHUNK):
            total += len(chunk)
    finally:
        body.close()
    return total


def hash_only(size: int) -> float:
    """Seconds to sha256 `size` bytes already in memory, in 8 MiB updates."""
    block = os.urandom(CHUNK)
    hasher = hashlib.sha256()
    started = time.perf_counter()
    for _ in range(size // CHUNK):
        hasher.update(block)
    return time.perf_counter() - started


def main() -> None:
    args = arguments(__doc__)
    from modelplane.store import S3Store, StoreConfig, verify_artifact  # noqa: PLC0415
    from modelplane.store.s3 import make_client  # noqa: PLC0415

    size = (256 if args.quick else 1024) * 1024 * 1024
    rounds = 3 if args.quick else 5
    cluster = bench_cluster()
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

    samples: dict[str, list[float]] = {"verify_artifact": [], "raw GET": [], "sha256 only": []}
    for index in range(rounds):
        # Alternate which goes first, so neither always runs on a warmer cache.
        order = ["verify", "raw"] if index % 2 == 0 else ["raw", "verify"]
        for what in order:
            started = time.perf_counter()
            if what == "verify":
                result = verify_artifact(uri, digest, expected_size=size, store=store)
                if not result.verified:
                    raise RuntimeError(f"verification failed: {result.message}")
                samples["verify_artifact"].append(time.perf_counter() - started)
            else:
                if raw_read(s3, key) != size:
                    raise RuntimeError("short read")
                samples["raw GET"].append(time.perf_counter() - started)
        samples["sha256 only"].append(hash_only(size))
        print(
            f"round {index + 1}: verify {samples['verify_artifact'][-1]:.2f} s, "
            f"raw {samples['raw GET'][-1]:.2f} s, hash {samples['sha256 only'][-1]:.2f} s"
        )

    mib = size / 2**20
    rows = []
    summary: dict[str, Any] = {}
    for name, seconds in samples.items():
        throughputs = sorted(mib / s for s in seconds)
        median = throughputs[len(throughputs) // 2]
        summary[name] = {"seconds": seconds, "mib_per_s": throughputs, "median_mib_per_s": median}
        rows.append([name, len(seconds), min(throughputs), median, max(throughputs)])
    # Each round's verify against the same round's raw read, then the median of the ratios.
    ratios = sorted(
        r / v for v, r in zip(samples["verify_artifact"], samples["raw GET"], strict=True)
    )
    ratio = ratios[len(ratios) // 2]
    print(f"\n{mib:.0f} MiB object, {rounds} alternating rounds (MiB/s)\n")
    print(table(["read", "n", "min", "median", "max"], rows))
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(f"\nverify / raw (median of per-round ratios): {ratio:.1%}; target >= 80 %: {verdict}")
    results = Results("artifact_verification", args.quick)
    results.data = {
        "object_bytes": size,
        "rounds": rounds,
        "chunk_bytes": CHUNK,
        "summary": summary,
        "per_round_ratio": ratios,
        "ratio_median": ratio,
        "target": TARGET,
        "met": ratio >= TARGET,
    }
    results.write()
    finish(cluster, args)


if __name__ == "__main__":
    main()
