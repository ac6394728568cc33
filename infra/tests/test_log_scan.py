"""infra/log_scan.py finds a recorded credential in a Herald log, ignores the stand-ins'
logs, and refuses to pass when a required kind was never recorded."""

from __future__ import annotations

import io
import json
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import log_scan  # noqa: E402


class LogScanTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp())
        (self.dir / "logs").mkdir()
        self.secrets = self.dir / "secrets.jsonl"
        lines = [
            {"kind": kind, "value": f"{kind}-value-0123456789"}
            for kind in sorted(log_scan.REQUIRED_KINDS)
        ]
        self.secrets.write_text("".join(json.dumps(line) + "\n" for line in lines))
        (self.dir / "logs" / "api.log").write_text('{"level":"INFO","message":"handled"}\n')

    def scan(self) -> tuple[int, str]:
        out = io.StringIO()
        with mock.patch.object(log_scan, "SECRETS", self.secrets), mock.patch.object(
            log_scan, "LOGS", self.dir / "logs"
        ), redirect_stdout(out), redirect_stderr(out):
            code = log_scan.main()
        return code, out.getvalue()

    def test_clean_logs_pass(self) -> None:
        code, out = self.scan()
        self.assertEqual(code, 0, out)
        self.assertIn("zero hits", out)

    def test_a_credential_in_a_herald_log_fails_without_printing_it(self) -> None:
        (self.dir / "logs" / "publisher.log").write_text(
            '{"message":"token access_token-value-0123456789"}\n'
        )
        code, out = self.scan()
        self.assertEqual(code, 1)
        self.assertIn("access_token in publisher.log", out)
        self.assertNotIn("access_token-value-0123456789", out)

    def test_the_stand_ins_logs_are_not_herald_logs(self) -> None:
        (self.dir / "logs" / "fake-platforms.log").write_text("Bearer api_key-value-0123456789\n")
        code, out = self.scan()
        self.assertEqual(code, 0, out)

    def test_a_value_recorded_as_two_kinds_counts_for_both_and_a_hit_names_the_first(self) -> None:
        lines = [
            {"kind": kind, "value": f"{kind}-value-0123456789"}
            for kind in sorted(log_scan.REQUIRED_KINDS - {"app_password"})
        ]
        # A Bluesky app password: recorded as such, then again from the `access_token` field.
        lines += [{"kind": "app_password", "value": "shared-value-0123456789"},
                  {"kind": "access_token", "value": "shared-value-0123456789"}]
        self.secrets.write_text("".join(json.dumps(line) + "\n" for line in lines))
        code, out = self.scan()
        self.assertEqual(code, 0, out)
        (self.dir / "logs" / "api.log").write_text("leaked shared-value-0123456789\n")
        code, out = self.scan()
        self.assertEqual(code, 1)
        self.assertIn("app_password in api.log", out)

    def test_a_required_kind_never_recorded_fails(self) -> None:
        self.secrets.write_text(json.dumps({"kind": "api_key", "value": "x" * 20}) + "\n")
        code, out = self.scan()
        self.assertEqual(code, 1)
        self.assertIn("recorded no", out)


if __name__ == "__main__":
    unittest.main()
