"""docs/architecture.md checked against the tree and template.yaml: every crate, function,
queue, table and domain feature folder it should name, it names, and it names nothing that is
gone."""

from __future__ import annotations

import re
import tomllib
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs/architecture.md").read_text()
TEMPLATE = (ROOT / "template.yaml").read_text()


def section(title: str) -> str:
    start = DOC.index(f"## {title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start:] if end < 0 else DOC[start:end]


def first_column(table_section: str) -> list[str]:
    """The first cells of a Markdown table's body rows, without backticks."""
    rows = [line for line in table_section.splitlines() if line.startswith("| `")]
    return [row.split("|")[1].strip().strip("`") for row in rows]


def resources(kind: str) -> list[str]:
    """Logical ids of template.yaml's resources of one type (read as text: the template's
    short-form tags are not plain YAML)."""
    return re.findall(rf"^  (\w+):\n    Type: {re.escape(kind)}\n", TEMPLATE, re.M)


class ArchitectureDocTest(unittest.TestCase):
    def test_the_crates_table_lists_every_workspace_member_and_nothing_else(self) -> None:
        members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
        listed = first_column(section("Crates"))
        for member in members:
            covered = member in listed or (
                member.startswith("functions/") and "functions/*" in listed
            )
            self.assertTrue(covered, f"{member} is a workspace member the crates table omits")
        for crate in listed:
            if crate == "functions/*":
                self.assertTrue(any(m.startswith("functions/") for m in members))
            else:
                self.assertIn(crate, members, f"the crates table lists {crate}, not a member")

    def test_the_function_table_is_every_function_in_the_tree_and_the_template(self) -> None:
        listed = sorted(first_column(section("The map")))
        in_tree = sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "Cargo.toml").exists())
        self.assertEqual(listed, in_tree)
        self.assertEqual(len(resources("AWS::Serverless::Function")), len(in_tree))
        self.assertIn(f"Herald is {len(in_tree)}", DOC.replace("twelve", "12"))

    def test_the_map_names_every_queue_table_and_bucket(self) -> None:
        the_map = section("The map")
        queues = [q for q in resources("AWS::SQS::Queue") if not q.endswith("DeadLetterQueue")]
        self.assertTrue(queues)
        for name in queues + resources("AWS::DynamoDB::Table") + resources("AWS::S3::Bucket"):
            self.assertIn(name, the_map, f"{name} is in template.yaml but not on the map")
        for dlq in resources("AWS::SQS::Queue"):
            if dlq.endswith("DeadLetterQueue"):
                short = dlq.replace("DeadLetterQueue", "DLQ")
                self.assertIn(short, the_map, f"{dlq} is not on the map (as {short})")

    def test_every_domain_feature_folder_has_its_paragraph(self) -> None:
        folders = sorted(
            p.name for p in (ROOT / "shared/domain/src").iterdir() if p.is_dir()
        )
        described = sorted(re.findall(r"^- \*\*`(\w+)/`\*\*", section("Feature folders in `shared/domain`"), re.M))
        self.assertEqual(folders, described)


if __name__ == "__main__":
    unittest.main()
