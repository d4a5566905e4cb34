"""The memory diagnostic: a timeline, and dumps on request."""

from __future__ import annotations

from pathlib import Path

from modelplane.operator import memdiag


def test_a_dump_writes_the_allocator_before_and_after_a_collection_and_the_types(
    tmp_path: Path,
) -> None:
    diagnostic = memdiag.Diagnostic(tmp_path, trace=False)
    stem = diagnostic.dump()
    assert "arenas allocated current" in Path(f"{stem}.malloc-before.txt").read_text()
    assert "arenas allocated current" in Path(f"{stem}.malloc-after.txt").read_text()
    assert "unreachable objects" in Path(f"{stem}.collected.txt").read_text()
    assert "tracked in all" in Path(f"{stem}.types.txt").read_text()
    assert not Path(f"{stem}.tracemalloc").exists()


def test_the_resident_set_is_read_from_proc() -> None:
    assert memdiag.rss_kib() > 1000
