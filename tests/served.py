"""A real ``incidentbot serve`` process on loopback, for end-to-end tests from outside."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def incidentbot_exe() -> str:
    exe = Path(sys.executable).with_name("incidentbot")
    if not exe.exists():
        pytest.skip("the incidentbot console script is not installed beside this Python")
    return str(exe)


class Served:
    """``serve`` in its own folder with its own SQLite database; stdout goes to a file, so the
    start-up banner can be read while it runs."""

    def __init__(self, folder: Path, *, args: tuple[str, ...] = (), env: dict[str, str] | None = None):
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out = folder / "serve.out"
        self.err = folder / "serve.err"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "INCIDENTBOT_"))}
        self.env.update(
            {
                "INCIDENTBOT_DATABASE_URL": f"sqlite:///{folder / 'served.db'}",
                "INCIDENTBOT_INGEST_TOKENS": "test-token,alertmanager:am-token",
            }
        )
        self.env.update(env or {})
        self.args = args
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Served":
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [incidentbot_exe(), "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args],
                cwd=self.folder,
                env=self.env,
                stdout=out,
                stderr=err,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2)
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"serve exited {self.proc.returncode}: {self.err.read_text()[-2000:]}")
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("serve did not answer /healthz within 60 s")

    def __exit__(self, *exc) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def banner(self) -> str:
        return self.out.read_text()

    def banner_value(self, label: str) -> str:
        m = re.search(rf"^\s*{re.escape(label)}:\s*(\S+)", self.banner(), re.M)
        assert m, f"{label!r} not in serve's start-up output:\n{self.banner()}"
        return m.group(1)
