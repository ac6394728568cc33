"""Tests for infra/runner.py: the runner as a process, driven over HTTP, running a fake function
(infra/tests/fake_function.py) that speaks the Lambda Runtime API as the Rust runtime does.

Each function in the test manifest is a shell wrapper in a temporary bin dir that execs the fake,
so what the runner kills and counts is the fake's own process.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

INFRA = Path(__file__).resolve().parents[1]
FAKE = Path(__file__).resolve().parent / "fake_function.py"


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for its reaper counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return True


def eventually(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


class RunnerProcess:
    """The runner started on a free port over a manifest of fake functions."""

    def __init__(self, root: Path, functions: dict[str, dict[str, Any]], concurrency: int = 2):
        bin_dir = root / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        manifest: dict[str, Any] = {"functions": {}, "global_environment": {}, "queues": {}}
        for name, spec in functions.items():
            wrapper = bin_dir / name
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
            wrapper.chmod(0o755)
            manifest["functions"][f"{name.title()}Function"] = {
                "binary": name, "events": [], "timeout": 10, "memory": 256, "environment": {}, **spec,
            }
        (root / "manifest.json").write_text(json.dumps(manifest))
        (root / "functions.env").write_text("OVERRIDDEN=from-env-file\nFROM_ENV_FILE=yes\n\n# a comment\n")
        self.log_dir = root / "logs"
        self.stdout = (root / "runner.out").open("w+")
        self.process = subprocess.Popen(
            [
                sys.executable, str(INFRA / "runner.py"), "--manifest", str(root / "manifest.json"),
                "--env-file", str(root / "functions.env"), "--bin-dir", str(bin_dir), "--log-dir", str(self.log_dir),
                "--host", "127.0.0.1", "--port", "0", "--concurrency", str(concurrency), "--exit-with-parent",
            ],
            stdout=self.stdout, stderr=subprocess.STDOUT, start_new_session=True,
        )
        ready = eventually(self._ready_line)
        if not ready:
            self.stop()
            raise AssertionError(f"the runner did not start: {Path(self.stdout.name).read_text()}")
        url = urlsplit(ready["url"])
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 0

    def _ready_line(self) -> dict[str, Any] | None:
        for line in Path(self.stdout.name).read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("event") == "ready":
                return json.loads(line)
        return None

    def call(self, method: str, path: str, body: Any = None, timeout: float = 15) -> tuple[int, dict[str, str], Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, None if body is None else json.dumps(body))
            r = conn.getresponse()
            raw = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(raw) if raw else None
        finally:
            conn.close()

    def invoke(self, function: str, event: Any) -> tuple[int, dict[str, str], Any]:
        return self.call("POST", f"/2015-03-31/functions/{function}/invocations", event)

    def instances(self, function: str) -> list[dict[str, Any]]:
        return self.call("GET", "/_admin/instances")[2][function]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # anything left behind, should a test fail
            except ProcessLookupError:
                pass
            self.stdout.close()


class RunnerTest(unittest.TestCase):
    runner: RunnerProcess
    tmp: tempfile.TemporaryDirectory[str]

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.runner = RunnerProcess(
            Path(cls.tmp.name),
            {
                "echo": {"memory": 512, "environment": {"FROM_MANIFEST": "yes", "OVERRIDDEN": "from-manifest"}},
                "brief": {"timeout": 1},
                "initerror": {"environment": {"FAKE_INIT": "error"}},
                "initexit": {"environment": {"FAKE_INIT": "exit"}},
            },
        )

    @classmethod
    def tearDownClass(cls) -> None:
        cls.runner.stop()
        cls.tmp.cleanup()

    def assertFunctionError(self, answer: tuple[int, dict[str, str], Any], error_type: str) -> dict[str, Any]:
        status, headers, body = answer
        self.assertEqual(status, 200, body)
        self.assertEqual(headers.get("x-amz-function-error"), "Unhandled", body)
        self.assertEqual(body["errorType"], error_type, body)
        return body

    def test_an_invocation_answers_the_functions_response(self) -> None:
        status, headers, body = self.runner.invoke("echo", {"hello": "world"})
        self.assertEqual(status, 200)
        self.assertNotIn("x-amz-function-error", headers)
        self.assertEqual(body["event"], {"hello": "world"})
        self.assertEqual(headers["x-amzn-requestid"], body["request_id"])
        self.assertEqual(body["arn"], "arn:aws:lambda:us-east-1:123456789012:function:echo")
        self.assertTrue(body["trace_id"].startswith("Root=1-"))

    def test_an_idle_environment_is_reused(self) -> None:
        first = self.runner.invoke("echo", {})[2]["pid"]
        second = self.runner.invoke("echo", {})[2]["pid"]
        self.assertEqual(first, second)

    def test_the_logical_id_and_an_arn_name_the_function_too(self) -> None:
        self.assertEqual(self.runner.invoke("EchoFunction", {"n": 1})[2]["event"], {"n": 1})
        arn = "arn:aws:lambda:us-east-1:123456789012:function:echo"
        self.assertEqual(self.runner.invoke(arn, {"n": 2})[2]["event"], {"n": 2})
        status, headers, _ = self.runner.invoke("nope", {})
        self.assertEqual((status, headers["x-amzn-errortype"]), (404, "ResourceNotFoundException"))

    def test_a_function_error_is_a_200_with_the_error_header(self) -> None:
        body = self.assertFunctionError(self.runner.invoke("echo", {"fail": "bad input"}), "FakeError")
        self.assertEqual(body["errorMessage"], "bad input")
        self.assertIn("event", self.runner.invoke("echo", {})[2], "the environment carries on")

    def test_the_deadline_is_the_wall_clock_plus_the_timeout(self) -> None:
        before = time.time() * 1000
        body = self.runner.invoke("echo", {})[2]
        after = time.time() * 1000
        self.assertGreaterEqual(body["deadline_ms"], before + 10_000 - 5)
        self.assertLessEqual(body["deadline_ms"], after + 10_000 + 5)

    def test_environment_manifest_then_env_file_then_lambdas_own(self) -> None:
        env = self.runner.invoke("echo", {})[2]["env"]
        self.assertEqual(env["FROM_MANIFEST"], "yes")
        self.assertEqual(env["FROM_ENV_FILE"], "yes")
        self.assertEqual(env["OVERRIDDEN"], "from-env-file")
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_NAME"], "echo")
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "512")
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST")
        self.assertEqual(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/echo")
        self.assertRegex(env["AWS_LAMBDA_LOG_STREAM_NAME"], r"^\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}$")
        self.assertRegex(env["AWS_LAMBDA_RUNTIME_API"], r"^127\.0\.0\.1:\d+$")
        self.assertEqual(env["AWS_REGION"], "us-east-1")
        self.assertNotIn("FAKE_INIT", env, "another function's environment stays its own")

    def test_environments_run_invocations_concurrently_up_to_the_limit(self) -> None:
        answers: list[Any] = []
        started = time.monotonic()
        threads = [threading.Thread(target=lambda: answers.append(self.runner.invoke("echo", {"sleep": 0.6})[2])) for _ in range(3)]
        for t in threads:
            t.start()
        self.assertTrue(eventually(lambda: len([i for i in self.runner.instances("echo") if i["busy"]]) == 2))
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        pids = [a["pid"] for a in answers]
        self.assertEqual(len(set(pids)), 2, "two at once (the limit is 2); the third waits for one")
        self.assertGreaterEqual(elapsed, 1.2)
        self.assertLess(elapsed, 3.0)

    def test_a_process_killed_mid_invocation_fails_it_and_the_next_gets_a_fresh_one(self) -> None:
        answer: list[Any] = []
        slow = threading.Thread(target=lambda: answer.append(self.runner.invoke("echo", {"sleep": 10})))
        slow.start()
        busy = eventually(lambda: [i for i in self.runner.instances("echo") if i["busy"]])
        self.assertEqual(len(busy), 1)
        status, _, killed = self.runner.call("POST", "/_admin/functions/echo/kill")
        self.assertEqual((status, killed), (200, {"killed": [busy[0]["pid"]]}))
        slow.join(timeout=5)
        body = self.assertFunctionError(answer[0], "Runtime.ExitError")
        self.assertIn("signal: killed", body["errorMessage"])
        self.assertTrue(eventually(lambda: gone(busy[0]["pid"])))
        after = self.runner.invoke("echo", {})[2]
        self.assertNotEqual(after["pid"], busy[0]["pid"])
        self.assertNotIn(busy[0]["pid"], [i["pid"] for i in self.runner.instances("echo")])

    def test_a_process_that_exits_mid_invocation_fails_it(self) -> None:
        body = self.assertFunctionError(self.runner.invoke("echo", {"exit": 7}), "Runtime.ExitError")
        self.assertIn("exit status 7", body["errorMessage"])
        self.assertIn("event", self.runner.invoke("echo", {})[2])

    def test_a_timed_out_invocation_is_answered_and_its_process_killed(self) -> None:
        pidfile = Path(self.tmp.name) / "brief.pid"
        started = time.monotonic()
        body = self.assertFunctionError(self.runner.invoke("brief", {"sleep": 5, "pidfile": str(pidfile)}), "Sandbox.Timedout")
        self.assertLess(time.monotonic() - started, 3)
        self.assertEqual(body["errorMessage"], "Task timed out after 1 seconds")
        pid = int(pidfile.read_text())
        self.assertTrue(eventually(lambda: gone(pid)), "the process is killed")
        after = self.runner.invoke("brief", {})[2]
        self.assertNotEqual(after["pid"], pid)

    def test_an_init_error_fails_the_invocation_that_started_the_process(self) -> None:
        body = self.assertFunctionError(self.runner.invoke("initerror", {}), "FakeInitError")
        self.assertEqual(body["errorMessage"], "no configuration")
        self.assertTrue(eventually(lambda: self.runner.instances("initerror") == []))
        # Every invocation tries a fresh process, as AWS does after a failed init.
        self.assertFunctionError(self.runner.invoke("initerror", {}), "FakeInitError")

    def test_an_exit_before_the_first_next_fails_the_invocation(self) -> None:
        body = self.assertFunctionError(self.runner.invoke("initexit", {}), "Runtime.ExitError")
        self.assertIn("exit status 3", body["errorMessage"])

    def test_processes_output_goes_to_the_functions_log(self) -> None:
        self.runner.invoke("initerror", {})
        text = eventually(lambda: (self.runner.log_dir / "initerror.log").exists() and (self.runner.log_dir / "initerror.log").read_text())
        self.assertIn("[runner] initerror: started pid", text)


class ShutdownTest(unittest.TestCase):
    def test_sigterm_stops_the_runner_and_every_process_it_started(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            runner = RunnerProcess(Path(tmp), {"echo": {}})
            threads = [threading.Thread(target=runner.invoke, args=("echo", {"sleep": 5})) for _ in range(2)]
            for t in threads:
                t.start()
            pids = eventually(lambda: [i["pid"] for i in runner.instances("echo") if i["busy"]] if len(runner.instances("echo")) == 2 else None)
            self.assertEqual(len(pids), 2)
            self.assertEqual(runner.stop(), 0)
            for pid in pids:
                self.assertTrue(eventually(lambda pid=pid: gone(pid)), f"pid {pid} outlived the runner")
            for t in threads:
                t.join(timeout=5)

    def test_the_runner_stops_with_its_parent_when_asked(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            manifest = Path(tmp) / "manifest.json"
            manifest.write_text('{"functions": {}}')
            # A parent that starts the runner, prints its pid, gives it time to start and dies.
            parent = subprocess.run(
                [
                    sys.executable, "-c",
                    "import subprocess, sys, time\n"
                    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
                    "print(p.pid, flush=True)\n"
                    "time.sleep(1)",
                    sys.executable, str(INFRA / "runner.py"), "--manifest", str(manifest),
                    "--port", "0", "--log-dir", tmp, "--exit-with-parent",
                ],
                capture_output=True, text=True, check=True, timeout=10,
            )
            pid = int(parent.stdout.strip())
            self.assertTrue(eventually(lambda: gone(pid), timeout=5), "the runner outlived its parent")

if __name__ == "__main__":
    unittest.main()
