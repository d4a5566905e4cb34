"""Recording the code a run executes: the git repository, commit and entry script, and dirtiness.

`capture_code` asks git about the directory of the entry script (``sys.argv[0]``, or the
working directory in a notebook or REPL), as MLflow does for its ``mlflow.source.git.*`` tags:

* ``repository``: the URL of the remote ``origin`` (else the first remote), with any user name
  and password removed from http(s) URLs so tokens never reach the API server; a repository
  without remotes is recorded as the ``file://`` URL of its top directory;
* ``commit``: ``HEAD``'s full SHA-1 (repositories using SHA-256 object names are not recorded,
  since the API takes 40-hex commits);
* ``dirty``: whether tracked files differ from ``HEAD`` (staged or not). Untracked files do not
  count, as with ``git describe --dirty``;
* ``path``: the entry script relative to the repository's top directory, when it lies inside.

Outside a repository, or without git, there is no code record (None); training never fails
for want of one.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from modelplane.api import CodeRef
from modelplane.api.fields import COMMIT, REPOSITORY
from modelplane.store.uris import file_uri

log = logging.getLogger(__name__)

_COMMIT = re.compile(COMMIT)
_REPOSITORY = re.compile(REPOSITORY)
GIT_TIMEOUT = 10.0


def _git(directory: Path, *args: str) -> str | None:
    """git's stripped output, or None when git fails or is missing."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 (a fixed git command line, no shell)
            [git, "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def strip_credentials(url: str) -> str:
    """``url`` without the user and password of an http(s) URL (a token often sits there)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _remote_url(top: Path) -> str:
    remotes = (_git(top, "remote") or "").split()
    name = "origin" if "origin" in remotes else (remotes[0] if remotes else None)
    url = _git(top, "remote", "get-url", name) if name else None
    if not url:
        return file_uri(top)
    url = strip_credentials(url)
    if _REPOSITORY.match(url):
        return url
    # A remote given as a local path (`git remote add origin ../upstream`).
    path = Path(url) if Path(url).is_absolute() else (top / url)
    return file_uri(path.resolve())


def _entry_path(top: Path, entry: Path | None) -> str | None:
    if entry is None:
        return None
    try:
        return entry.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        return None


def capture_code(directory: Path, entry: Path | None = None) -> CodeRef | None:
    """The git record of ``directory``'s repository at HEAD, or None outside one."""
    top_text = _git(directory, "rev-parse", "--show-toplevel")
    commit = _git(directory, "rev-parse", "--verify", "HEAD") if top_text else None
    if not top_text or not commit:
        log.info("%s is not in a git repository with commits; no code is recorded", directory)
        return None
    if _COMMIT.match(commit) is None:
        log.warning("commit %s is not a 40-hex SHA-1; no code is recorded", commit)
        return None
    top = Path(top_text)
    status = _git(top, "status", "--porcelain", "--untracked-files=no")
    return CodeRef(
        repository=_remote_url(top),
        commit=commit,
        path=_entry_path(top, entry),
        dirty=bool(status),
    )
