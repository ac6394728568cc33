"""Starting a local server for a test or a bench: a free port, and a process that is waited for
until it answers (shared by infra/tests and infra/bench_local_aws.py)."""

from __future__ import annotations

import socket
import subprocess
import time
import unittest
from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(argv: list[str], ready: Callable[[], object], timeout: float = 30.0) -> subprocess.Popen[bytes]:
    """Starts `argv` and returns once `ready()` returns without raising; kills the process and
    raises the last error if it exits first or `timeout` seconds pass."""
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while True:
        try:
            ready()
            return server
        except Exception:  # noqa: BLE001 (not up yet)
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise
            time.sleep(0.1)


class ServerTestCase(unittest.TestCase):
    """One server for a test class: started before its first test, stopped after its last. A
    subclass names its `command` and how to `probe` that it answers."""

    server: subprocess.Popen[bytes]
    endpoint: str

    @classmethod
    def command(cls, port: int) -> list[str]:
        raise NotImplementedError

    @classmethod
    def probe(cls) -> object:
        raise NotImplementedError

    @classmethod
    def setUpClass(cls) -> None:
        port = free_port()
        cls.endpoint = f"http://127.0.0.1:{port}"
        cls.server = start(cls.command(port), cls.probe)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.terminate()
        cls.server.wait(10)
