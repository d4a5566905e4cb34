"""The stages a version is live in."""

from __future__ import annotations

from modelplane.core.stages import StagePointer, stages_of_version


def test_lists_the_stages_whose_live_version_it_is_sorted() -> None:
    pointers = [
        StagePointer("Staging", 3),
        StagePointer("Production", 3),
        StagePointer("champion", 2),
    ]
    assert stages_of_version(3, pointers) == ["Production", "Staging"]
    assert stages_of_version(2, pointers) == ["champion"]


def test_a_stage_with_no_live_version_points_nowhere() -> None:
    assert stages_of_version(1, [StagePointer("Production", None)]) == []


def test_no_stages_means_an_empty_list() -> None:
    assert stages_of_version(1, []) == []
