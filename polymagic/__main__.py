"""Command line: `python -m polymagic situation`."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m polymagic")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("situation", help="print runtimes, compilers, versions, cache dir")
    args = parser.parse_args(argv)
    if args.command == "situation":
        from .situation import main as situation
        return situation()
    return 2


if __name__ == "__main__":
    sys.exit(main())
