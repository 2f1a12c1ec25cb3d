"""Run the local host as a subprocess, for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from devhost.azurite import ROOT, _listening, free_port

READY = "Host started:"


class HostProcess:
    """`python -m devhost --no-azurite` on a port; output goes to .azurite/devhost-<port>.log.

    `env` is laid over this process's environment (set AzureWebJobsStorage to a test Azurite).
    """

    def __init__(
        self,
        env: dict[str, str],
        port: int | None = None,
        app: str = "function_app:app",
        host_json: str | os.PathLike[str] | None = None,
        no_azurite: bool = True,
        args: tuple[str, ...] = (),
    ):
        self.port = port or free_port()
        self.app = app
        self.host_json = host_json
        self.no_azurite = no_azurite
        self.args = args  # more of devhost's options, e.g. ("--cors", "http://localhost:5173")
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.log_path = ROOT / ".azurite" / f"devhost-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def pid(self) -> int:
        assert self.process, "not started"
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 60) -> HostProcess:
        command = [sys.executable, "-m", "devhost", "--port", str(self.port), "--app", self.app]
        if self.no_azurite:
            command.append("--no-azurite")
        if self.host_json:
            command += ["--host-json", str(Path(self.host_json).resolve())]
        command += self.args
        self.log_path.parent.mkdir(exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not (READY in self.output() and _listening(self.port)):
            if self.process.poll() is not None:
                raise RuntimeError(f"devhost exited with {self.process.returncode}:\n{self.output()[-4000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"devhost did not start in {timeout}s:\n{self.output()[-4000:]}")
            time.sleep(0.1)
        return self

    def stop(self, timeout: float = 30) -> int | None:
        """SIGINT (a clean stop, as Ctrl-C), then SIGKILL if it does not exit in time."""
        if not self.process:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> HostProcess:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
