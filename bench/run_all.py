"""Run every bench/bench_*.py in turn with this Python; exit 1 if any of them fails.

Arguments are passed through to each script, e.g. `python bench/run_all.py --limit 2000`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if not scripts:
        print("no bench/bench_*.py scripts found", file=sys.stderr)
        return 1
    failed: list[str] = []
    for script in scripts:
        print(f"==== {script.name} ====", flush=True)
        code = subprocess.run([sys.executable, str(script), *argv], check=False).returncode
        if code != 0:
            print(f"==== {script.name} FAILED (exit {code}) ====", flush=True)
            failed.append(script.name)
        print(flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(scripts)} benchmark(s) passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
