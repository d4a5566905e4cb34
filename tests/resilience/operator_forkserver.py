"""A fork server for operator processes: import the operator once, start each replica by fork.

On a loaded CI machine importing the operator (kubernetes, kopf, boto3) takes 20-30 s of wall
time, which would make a test that kills and restarts the operator 20 times take many minutes.
This script imports everything once and then, for each JSON line on stdin
(`{"argv": [...], "env": {...}, "log": path}`), forks a child that runs exactly what
`python -m modelplane.operator` runs (`modelplane.operator.runner.main(argv)`) with its output
in `log`, and answers with the child's PID. The children are separate processes that tests kill
with SIGKILL like any operator; the server reaps them (SIGCHLD ignored). No threads run in the
server, so forking is safe.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys

from modelplane.operator import runner


def main() -> None:
    for module in runner.HANDLER_MODULES:
        importlib.import_module(module)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()
            os.environ.update(request["env"])
            fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            code = 1
            try:
                code = runner.main(request["argv"])
            finally:
                os._exit(code)
        print(pid, flush=True)


if __name__ == "__main__":
    main()
