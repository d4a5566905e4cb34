"""`modelplane fetch` with file:// artifacts: where files land, digests, and cleaning up.

The same command against MinIO is in test_cli_cluster.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelplane.cli.fetch_commands import artifact_file_name
from modelplane.cli.main import main
from modelplane.store import LocalStore, file_uri


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "store" / "model.pkl"
    path.parent.mkdir()
    path.write_bytes(b"weights")
    return path


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    root = tmp_path / "store" / "model"
    (root / "sub").mkdir(parents=True)
    (root / "MLmodel").write_text("flavor: sklearn\n")
    (root / "sub" / "model.pkl").write_bytes(b"weights")
    return root


def directory_digest(path: Path) -> str:
    return str(LocalStore().digest(file_uri(path, directory=True)).digest)


def test_a_file_lands_in_the_directory_under_its_name(model_file: Path, tmp_path: Path) -> None:
    dest = tmp_path / "models"
    code = main(["fetch", file_uri(model_file), str(dest), "--digest", sha256(b"weights")])
    assert code == 0
    assert sorted(p.name for p in dest.iterdir()) == ["model.pkl"]
    assert (dest / "model.pkl").read_bytes() == b"weights"


def test_a_directory_lands_with_its_relative_paths(model_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "models"
    dest.mkdir()
    (dest / "MLmodel").write_text("old")
    uri = file_uri(model_dir, directory=True)
    assert main(["fetch", uri, str(dest), "--digest", directory_digest(model_dir)]) == 0
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
        "MLmodel",
        "sub",
        "sub/model.pkl",
    ]
    assert (dest / "MLmodel").read_text() == "flavor: sklearn\n"


def test_a_mismatch_exits_1_and_leaves_nothing(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "new" / "models"
    wrong = sha256(b"something else")
    assert main(["fetch", file_uri(model_dir, directory=True), str(dest), "--digest", wrong]) == 1
    assert "digest mismatch" in capsys.readouterr().err
    assert not dest.exists()


def test_a_mismatch_keeps_a_directory_that_was_there(model_file: Path, tmp_path: Path) -> None:
    dest = tmp_path / "models"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    assert main(["fetch", file_uri(model_file), str(dest), "--digest", sha256(b"x")]) == 1
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_the_digest_defaults_to_model_digest_from_the_environment(
    model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_DIGEST", sha256(b"not the weights"))
    assert main(["fetch", file_uri(model_file), str(tmp_path / "models")]) == 1
    monkeypatch.setenv("MODEL_DIGEST", sha256(b"weights"))
    assert main(["fetch", file_uri(model_file), str(tmp_path / "models")]) == 0


def test_a_missing_artifact_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = file_uri(tmp_path / "nothing-here")
    assert main(["fetch", missing, str(tmp_path / "models")]) == 3
    assert "artifact not found" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    "arguments",
    [
        ["gs://bucket/model.pkl", "out"],
        ["file:///tmp/model.pkl", "out", "--digest", "sha256:abc"],
    ],
)
def test_a_malformed_uri_or_digest_is_a_usage_error(arguments: list[str]) -> None:
    assert main(["fetch", *arguments]) == 2


def test_a_file_artifact_is_named_by_the_last_segment_of_its_uri() -> None:
    assert artifact_file_name("s3://models/churn/3/model.pkl") == "model.pkl"
    assert artifact_file_name("file:///srv/models/churn%231.onnx") == "churn#1.onnx"
