"""The phone-number prefix -> time zones table Herald's quiet hours read.

The `phonenumber` crate has no time-zone data; libphonenumber's own time-zone metadata ships
in the `phonenumbers` package (pinned in requirements.txt). This writes it as one line per
prefix: the E.164 digits a number starts with, a tab, its zones separated by spaces. The
domain reads the longest prefix a number starts with.

    python infra/phone_zones.py          # rewrite the table
    python infra/phone_zones.py --check  # exit 1 if the table differs from the package's
"""

import argparse
import pathlib
import sys

TABLE = pathlib.Path(__file__).resolve().parent.parent / "shared/domain/src/campaigns/phone_zones.tsv"


def render() -> str:
    import phonenumbers
    from phonenumbers.tzdata import TIMEZONE_DATA

    lines = [f"# libphonenumber time-zone metadata, from phonenumbers {phonenumbers.__version__}: infra/phone_zones.py"]
    for prefix in sorted(TIMEZONE_DATA):
        zones = TIMEZONE_DATA[prefix]
        # An unknown zone is libphonenumber's "Etc/Unknown": left out (the fallback applies).
        known = [z for z in zones if z != "Etc/Unknown"]
        if known:
            lines.append(f"{prefix}\t{' '.join(known)}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    table = render()
    if args.check:
        if TABLE.read_text() != table:
            print(f"{TABLE} is not what phonenumbers gives: run infra/phone_zones.py", file=sys.stderr)
            return 1
        return 0
    TABLE.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
