"""Run every bench/bench_*.py in turn with this Python; exit 1 if any of them fails.

`--data PATH` (the airline tweets CSV) reaches every script as `$SOCIALCARE_AIRLINE_CSV`,
so scripts that do not read it are not handed an option they do not know. Other arguments
are passed through to each script unchanged, e.g. `python bench/run_all.py --json`.

A script without its data says so on a line starting `skipped:` and exits 0: a skip is
not a failure, and the summary counts it apart.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from airline import DATA_ENV

HERE = Path(__file__).resolve().parent


def _is_skip(line: str) -> bool:
    text = line.strip()
    return text.startswith("skipped:") or text.startswith('{"skipped": true')


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--data", type=Path)
    known, passed_on = parser.parse_known_args(argv)
    env = dict(os.environ)
    if known.data is not None:
        env[DATA_ENV] = str(known.data.expanduser().resolve())
    scripts = sorted(HERE.glob("bench_*.py"))
    if not scripts:
        print("no bench/bench_*.py scripts found", file=sys.stderr)
        return 1
    failed: list[str] = []
    skipped: list[str] = []
    for script in scripts:
        print(f"==== {script.name} ====", flush=True)
        with subprocess.Popen(
            [sys.executable, str(script), *passed_on], env=env, stdout=subprocess.PIPE, text=True
        ) as process:
            assert process.stdout is not None
            said_skipped = False
            for line in process.stdout:
                print(line, end="", flush=True)
                said_skipped = said_skipped or _is_skip(line)
        code = process.returncode
        if code != 0:
            print(f"==== {script.name} FAILED (exit {code}) ====", flush=True)
            failed.append(script.name)
        elif said_skipped:
            skipped.append(script.name)
        print(flush=True)
    ran = len(scripts) - len(failed) - len(skipped)
    summary = f"{ran} benchmark(s) passed"
    if skipped:
        summary += f", {len(skipped)} skipped (see above): {', '.join(skipped)}"
    if failed:
        print(f"{summary}; failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
