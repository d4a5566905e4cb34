"""A diagnostic: where the operator's memory goes (BENCHMARKS.md, section 2).

Off unless `MODELPLANE_MEMORY_DIAG` names a directory. Then the operator writes there:

- `timeline.tsv`: every `POLL` seconds, its RSS, CPython's count of allocated blocks and the
  garbage collector's counts, from just before kopf starts;
- on each SIGUSR1 (`kill -USR1 <pid>`), `dump-N.*`: CPython's small-object allocator before and
  after a full garbage collection (`.malloc-before.txt`, `.malloc-after.txt`: arenas, blocks
  in use and free), the RSS both times and what the collection found (`.collected.txt`), the
  objects the collector tracks counted by type (`.types.txt`), and with tracing on, a
  tracemalloc snapshot (`.tracemalloc`).

`MODELPLANE_MEMORY_DIAG_TRACE=1` also traces allocations (tracemalloc, `FRAMES` deep) from the
moment the handlers are registered, and writes `peak.tracemalloc` whenever the traced memory
has grown by a tenth, so the last one written is the peak. Tracing slows the operator several
times over and costs memory of its own, and CPython's allocator statistics are not available
while it runs: compare snapshots, not the RSS of a traced run. Read a snapshot with
`python -m modelplane.operator.memdiag FILE [EARLIER_FILE]`.
"""

from __future__ import annotations

import collections
import gc
import os
import signal
import sys
import threading
import time
import tracemalloc
from pathlib import Path

ENV = "MODELPLANE_MEMORY_DIAG"
TRACE_ENV = "MODELPLANE_MEMORY_DIAG_TRACE"
FRAMES = 12
POLL = 0.5
GROWTH = 1.1


def start_from_env() -> None:
    """Starts the diagnostic when `MODELPLANE_MEMORY_DIAG` is set (see the module)."""
    directory = os.environ.get(ENV)
    if directory:
        Diagnostic(Path(directory), trace=os.environ.get(TRACE_ENV) == "1").start()


class Diagnostic:
    """The timeline and the dumps of one operator process, in `directory`."""

    def __init__(self, directory: Path, *, trace: bool) -> None:
        self.directory = directory
        self.trace = trace
        self.requested = threading.Event()
        self.dumps = 0

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.trace:
            tracemalloc.start(FRAMES)
        signal.signal(signal.SIGUSR1, lambda *_: self.requested.set())
        threading.Thread(target=self._watch, name="memdiag", daemon=True).start()

    def _watch(self) -> None:
        started = time.monotonic()
        traced = 0
        with (self.directory / "timeline.tsv").open("w", buffering=1) as timeline:
            timeline.write("seconds\trss_kib\tallocated_blocks\tgc_counts\n")
            while True:
                timeline.write(
                    f"{time.monotonic() - started:.1f}\t{rss_kib()}\t"
                    f"{sys.getallocatedblocks()}\t{gc.get_count()}\n"
                )
                if self.requested.wait(POLL):
                    self.requested.clear()
                    self.dump()
                current, _peak = tracemalloc.get_traced_memory()
                if tracemalloc.is_tracing() and current > traced * GROWTH:
                    tracemalloc.take_snapshot().dump(str(self.directory / "peak.tracemalloc"))
                    traced = current

    def dump(self) -> Path:
        """Writes `dump-N.*` (see the module); returns their common stem."""
        self.dumps += 1
        stem = self.directory / f"dump-{self.dumps}"
        before = rss_kib()
        _mallocstats(Path(f"{stem}.malloc-before.txt"))
        found = gc.collect()
        Path(f"{stem}.collected.txt").write_text(
            f"RSS {before} KiB before a full collection, {rss_kib()} KiB after; "
            f"{found} unreachable objects\n"
        )
        _mallocstats(Path(f"{stem}.malloc-after.txt"))
        if tracemalloc.is_tracing():
            tracemalloc.take_snapshot().dump(f"{stem}.tracemalloc")
        counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
        lines = [f"{count:>10} {name}" for name, count in counts.most_common(80)]
        lines.append(f"{sum(counts.values()):>10} tracked in all")
        Path(f"{stem}.types.txt").write_text("\n".join(lines) + "\n")
        return stem


def rss_kib() -> int:
    """This process's resident set (VmRSS), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _mallocstats(path: Path) -> None:
    """`sys._debugmallocstats` writes to file descriptor 2: point that at `path` meanwhile.
    (It says nothing of the allocator while tracemalloc runs.)"""
    saved = os.dup(2)
    with path.open("w") as out:
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def report(path: str, earlier: str | None = None) -> None:
    """Prints the largest allocation sites of a snapshot, or what grew since `earlier`."""
    snapshot = tracemalloc.Snapshot.load(path)
    total = sum(stat.size for stat in snapshot.statistics("filename"))
    print(f"{path}: {total / 2**20:.1f} MiB traced")
    if earlier is not None:
        for diff in snapshot.compare_to(tracemalloc.Snapshot.load(earlier), "traceback")[:25]:
            print(f"{diff.size_diff / 2**20:+8.2f} MiB {diff.count_diff:+9d}")
            for line in diff.traceback.format(limit=FRAMES, most_recent_first=True):
                print("    ", line)
        return
    for key in ("filename", "lineno"):
        for stat in snapshot.statistics(key)[:30]:
            print(f"{stat.size / 2**20:8.2f} MiB {stat.count:9d} {stat.traceback}")
        print()
    for stat in snapshot.statistics("traceback")[:25]:
        print(f"{stat.size / 2**20:8.2f} MiB {stat.count:9d}")
        for line in stat.traceback.format(limit=FRAMES, most_recent_first=True):
            print("    ", line)


if __name__ == "__main__":
    report(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
