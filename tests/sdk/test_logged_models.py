"""Logged models: the digest computed before upload is the one the operator verifies."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelplane.sdk.models import (
    check_flavor,
    local_model_digest,
    model_tag_value,
    parse_model_tag,
)
from modelplane.store import LocalStore, file_uri, verify_artifact


def test_a_directory_digest_verifies_after_upload(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "conf").mkdir(parents=True)
    (model / "model.pkl").write_bytes(b"abc")
    (model / "conf" / "params.json").write_bytes(b"")
    digest = local_model_digest(model)
    uploaded = file_uri(tmp_path / "store" / "run" / "model", directory=True)
    LocalStore().put_directory(model, uploaded)
    result = verify_artifact(uploaded, str(digest.digest))
    assert result.verified, result.message
    assert digest.size == 3


def test_a_single_file_becomes_the_only_file_of_the_model_directory(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    digest = local_model_digest(model)
    manifest = f"model.onnx\t4\t{hashlib.sha256(b'onnx').hexdigest()}\n".encode()
    assert str(digest.digest) == f"sha256:{hashlib.sha256(manifest).hexdigest()}"
    uploaded = tmp_path / "store" / "model"
    LocalStore().put_file(model, file_uri(uploaded / "model.onnx"))
    assert verify_artifact(file_uri(uploaded, directory=True), str(digest.digest)).verified


def test_model_tags_round_trip() -> None:
    value = model_tag_value("sha256:" + "a" * 64, "sklearn")
    assert len(value) <= 512
    assert parse_model_tag(value) == ("sha256:" + "a" * 64, "sklearn")
    assert parse_model_tag("a tag someone set by hand") is None


def test_flavors_follow_the_model_version_rule() -> None:
    assert check_flavor("xgboost") == "xgboost"
    with pytest.raises(ValueError, match="invalid flavor"):
        check_flavor("XGBoost")
