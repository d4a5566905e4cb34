"""The code record: commit, dirtiness, remote and entry script of a real git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from modelplane.sdk.sources import capture_code, strip_credentials


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "churn"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "ml@example.com")
    git(path, "config", "user.name", "ML")
    (path / "src").mkdir()
    (path / "src" / "train.py").write_text("print('train')\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "train")
    return path


def test_records_head_commit_entry_path_and_a_clean_tree(repo: Path) -> None:
    code = capture_code(repo / "src", repo / "src" / "train.py")
    assert code is not None
    assert code.commit == git(repo, "rev-parse", "HEAD")
    assert code.path == "src/train.py"
    assert code.dirty is False
    # No remote: the repository's own directory, as a file:// URL.
    assert code.repository == repo.resolve().as_uri()


def test_a_modified_tracked_file_makes_the_tree_dirty(repo: Path) -> None:
    (repo / "src" / "train.py").write_text("print('changed')\n")
    code = capture_code(repo, None)
    assert code is not None
    assert code.dirty is True
    assert code.path is None


def test_untracked_files_do_not_make_the_tree_dirty(repo: Path) -> None:
    (repo / "notes.txt").write_text("scratch\n")
    code = capture_code(repo, None)
    assert code is not None
    assert code.dirty is False


def test_records_the_origin_remote_without_its_token(repo: Path) -> None:
    git(repo, "remote", "add", "upstream", "https://git.example.com/other.git")
    git(repo, "remote", "add", "origin", "https://bot:s3cr3t@git.example.com/ml/churn.git")
    code = capture_code(repo, None)
    assert code is not None
    assert code.repository == "https://git.example.com/ml/churn.git"


def test_outside_a_repository_there_is_no_code_record(tmp_path: Path) -> None:
    assert capture_code(tmp_path, None) is None


def test_a_repository_without_commits_has_no_code_record(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    assert capture_code(tmp_path, None) is None


@pytest.mark.parametrize(
    ("url", "stripped"),
    [
        ("https://user:token@github.com/a/b.git", "https://github.com/a/b.git"),
        ("https://ghp_token@github.com/a/b.git", "https://github.com/a/b.git"),
        ("https://github.com/a/b.git", "https://github.com/a/b.git"),
        ("git@github.com:a/b.git", "git@github.com:a/b.git"),
        ("ssh://git@github.com/a/b.git", "ssh://git@github.com/a/b.git"),
    ],
)
def test_strips_credentials_from_http_urls_only(url: str, stripped: str) -> None:
    assert strip_credentials(url) == stripped
