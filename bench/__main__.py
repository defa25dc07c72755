"""`make bench`: run every benchmark module in this folder (or those named on the command line).

Each module exposes `main() -> None` and prints its figures as ratios against a baseline it
measures in the same run. Benchmarks never fail on timing.
"""

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> None:
    names = sys.argv[1:] or sorted(
        module.name
        for module in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not module.name.startswith("_")
    )
    for name in names:
        print(f"\n=== bench/{name} ===", flush=True)
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main()
