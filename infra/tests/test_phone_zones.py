"""The quiet hours' prefix -> time zones table is libphonenumber's, as the pinned package ships it."""

import subprocess
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class PhoneZonesTable(unittest.TestCase):
    def test_the_checked_in_table_is_what_the_pinned_package_gives(self):
        run = subprocess.run(
            [sys.executable, str(ROOT / "infra/phone_zones.py"), "--check"],
            capture_output=True,
            text=True,
        )
        self.assertEqual(run.returncode, 0, run.stderr)

    def test_a_changed_table_is_noticed(self):
        sys.path.insert(0, str(ROOT / "infra"))
        import phone_zones

        table = phone_zones.render()
        self.assertIn("\n33\tEurope/Paris\n", table)
        self.assertIn("\n1201\tAmerica/New_York\n", table)
        self.assertNotEqual(table.replace("Europe/Paris", "Europe/Berlin"), table)


if __name__ == "__main__":
    unittest.main()
