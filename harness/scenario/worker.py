"""One scenario run in a process of its own (for `harness run --jobs N`).

`python -m harness.scenario.worker FILE SCENARIO [--seed S] [--attempt K]` runs the
scenario like `harness run` does and prints `{"run_dir": ...}` as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from harness.config.scenario import load_scenarios
from harness.errors import HarnessError
from harness.lab.lab import _tear_down_on_sigterm
from harness.scenario.runner import run_scenario


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="harness-worker")
    ap.add_argument("file", type=Path)
    ap.add_argument("scenario")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--attempt", type=int, default=1)
    args = ap.parse_args(argv)
    _tear_down_on_sigterm()  # the parent stops us with SIGTERM: tear the lab down
    try:
        found = {sc.name: sc for sc in load_scenarios(args.file)}
        if args.scenario not in found:
            raise HarnessError(f"{args.file}: no scenario named {args.scenario!r}")
        result = asyncio.run(
            run_scenario(found[args.scenario], seed=args.seed, attempt=args.attempt)
        )
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(json.dumps({"run_dir": str(result.run_dir)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
