"""How the demo talks: numbered steps, what to look at, and the real commands it runs."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Narrator:
    """Prints the story and runs commands (kubectl, modelplane) with the demo's environment."""

    kubectl: Path
    env: dict[str, str]
    started: float = field(default_factory=time.monotonic)
    number: int = 0

    def step(self, title: str, look_at: str = "") -> None:
        self.number += 1
        elapsed = time.monotonic() - self.started
        print(f"\n=== {self.number}. {title}  [{elapsed:5.1f}s]", flush=True)
        if look_at:
            print(f"    look at: {look_at}", flush=True)

    def say(self, text: str) -> None:
        print(f"    {text}", flush=True)

    def run(
        self,
        argv: Sequence[str],
        *,
        shown: Sequence[str],
        check: bool = True,
        input_text: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command, print it (as `shown`) and its output; with check, a failure stops
        the demo."""
        print(f"$ {shlex.join(shown)}", flush=True)
        result = subprocess.run(  # noqa: S603 - the demo's own commands
            list(argv),
            input=input_text,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        output = (result.stdout + result.stderr).rstrip()
        if output:
            print(output, flush=True)
        if check and result.returncode != 0:
            raise DemoError(f"{shlex.join(shown)} failed ({result.returncode}): {output}")
        return result

    def kubectl_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run([str(self.kubectl), *args], shown=["kubectl", *args], check=check)

    def modelplane(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The same CLI a user runs, from the interpreter running the demo."""
        argv = [sys.executable, "-m", "modelplane.cli.main", *args]
        return self.run(argv, shown=["modelplane", *args], check=check)


class DemoError(RuntimeError):
    """A demo step did not reach its expected result."""
