"""Command line: `python -m polymagic situation`, `python -m polymagic help [TOPIC]`."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m polymagic")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("situation", help="print runtimes, compilers, versions, cache dir")
    helping = commands.add_parser("help", help="print the docs of a topic (julia, r, cpp, "
                                               "cython, hub), or the list of topics")
    helping.add_argument("topic", nargs="?")
    args = parser.parse_args(argv)
    if args.command == "situation":
        from .situation import main as situation
        return situation()
    if args.command == "help":
        from .helptext import main as show_help
        return show_help(args.topic)
    return 2


if __name__ == "__main__":
    sys.exit(main())
