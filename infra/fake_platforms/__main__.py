"""The command line: `python infra/fake_platforms --host 127.0.0.1 --port 4580` (or
`python -m fake_platforms ...` with infra/ on the path). Prints `listening on http://HOST:PORT`
once bound and serves until SIGTERM or Ctrl-C."""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a folder, Python puts the package's own folder first on sys.path, where its modules
# would be found as top-level ones (and could shadow others): the package's absolute imports
# need infra/ there instead.
_PACKAGE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == _PACKAGE:
    sys.path[0] = str(_PACKAGE.parent)
elif str(_PACKAGE.parent) not in sys.path:
    sys.path.insert(0, str(_PACKAGE.parent))

import argparse  # noqa: E402
import signal  # noqa: E402
from typing import Any  # noqa: E402

import fake_platforms  # noqa: E402
from fake_platforms.server import make_server  # noqa: E402


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(fake_platforms.__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4580, help="0 picks a free port")
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port)
    signal.signal(signal.SIGTERM, _stop)
    print(f"listening on {server.url}", flush=True)
    server.log.write(level="info", msg="listening", url=server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
