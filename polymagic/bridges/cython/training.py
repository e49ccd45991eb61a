"""The training run of `%%cython --pgo` (pgo.py), run as
`python -m polymagic.bridges.cython.training NAME PATH SYS_PATH_JSON` in a child
process: it imports the instrumented module, whose module-level code is the training
workload, and exits, which makes GCC's runtime write the profile."""
from __future__ import annotations

import json
import sys

from ...toolchain import load_extension


def main(argv: list[str]) -> None:
    name, path, search_path = argv
    sys.path[:] = json.loads(search_path)  # the cell may import what the session can
    load_extension(name, path)


if __name__ == "__main__":
    main(sys.argv[1:])
