"""Starting, finding and stopping the local control plane's processes.

Each component runs detached in its own session, so it outlives the command that started it;
its PID and command line are recorded so a later `up` can tell a live cluster from a stale one
(a PID reused by an unrelated process does not count as alive).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Components are meant to outlive the Popen objects that started them; keeping the objects
# here stops Python from warning that a subprocess is still running when they are collected.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class Component:
    """A running component: its name, PID and the executable it was started from."""

    name: str
    pid: int
    executable: str

    def alive(self) -> bool:
        """True when the PID is live and still runs the same executable."""
        proc = Path(f"/proc/{self.pid}")
        try:
            # The state follows the parenthesised command name: "Z" is a zombie (exited).
            state = proc.joinpath("stat").read_text().rpartition(")")[2].split()[0]
            cmdline = proc.joinpath("cmdline").read_bytes()
        except (OSError, IndexError):
            return False
        if state == "Z":
            return False
        if not cmdline:  # empty for a moment while the kernel sets up a fresh exec
            return True
        return cmdline.split(b"\0", 1)[0].decode(errors="replace") == self.executable


def free_port() -> int:
    """A TCP port on loopback that nothing listens on at this moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
) -> Component:
    """Start `argv` detached, with stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - argv is built by this package, never a shell
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    _STARTED[proc.pid] = proc
    return Component(name=name, pid=proc.pid, executable=argv[0])


def stop(component: Component, timeout: float = 10.0) -> None:
    """Stop a component: SIGTERM, then SIGKILL once `timeout` has passed."""
    if not component.alive():
        _reap(component.pid)
        return
    try:
        os.kill(component.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not component.alive():
            _reap(component.pid)
            return
        time.sleep(0.1)
    try:
        os.kill(component.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _reap(component.pid)


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (as in tests)."""
    proc = _STARTED.pop(pid, None)
    if proc is not None:
        # Only called once the process was killed or is a zombie: this returns at once.
        proc.wait(timeout=10)
        return
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    component: Component | None = None,
    log_path: Path | None = None,
) -> None:
    """Poll `check` until it holds; fail early when `component` dies, quoting its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if component is not None and not component.alive():
            raise RuntimeError(f"{component.name} exited while waiting for {what}{_tail(log_path)}")
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{_tail(log_path)}")


def _tail(log_path: Path | None, lines: int = 25) -> str:
    if log_path is None or not log_path.exists():
        return ""
    text = log_path.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {log_path} ---\n" + "\n".join(text)
