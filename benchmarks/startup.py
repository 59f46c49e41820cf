"""How long hf-finetune takes to start, as a ratio to `import huggingface_hub`, measured side by side.

    python benchmarks/startup.py                           # this checkout's install
    python benchmarks/startup.py --compare /tmp/old/.venv  # also another install (e.g. an older commit's)

Each command runs in a fresh interpreter, the commands of all installs interleaved round by round (so a
busy moment of the machine hits them all alike); the figure is the median wall time over the rounds.
Writes benchmarks/results/startup.json. The goal: `hf-finetune --version` and `--help` within 0.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results as result_files  # noqa: E402

COMMANDS = {
    "import huggingface_hub": ["-c", "import huggingface_hub"],
    "import hf_finetune": ["-c", "import hf_finetune"],
    "hf-finetune --version": ["-m", "hf_finetune", "--version"],
    "hf-finetune --help": ["-m", "hf_finetune", "--help"],
}
HEAVY = ("torch", "transformers", "datasets", "evaluate")


NEUTRAL = tempfile.gettempdir()   # run from here: a checkout in the current folder would shadow the install


def seconds(python: str, args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([python, *args], check=True, capture_output=True, cwd=NEUTRAL)
    return time.perf_counter() - started


def heavy_modules(python: str, args: list[str]) -> list[str]:
    """Which of torch, transformers, datasets, evaluate the command imported."""
    code = ("import runpy, sys\n"
            + (f"sys.argv = {['hf-finetune', *args[2:]]!r}\n"
               "try:\n    runpy.run_module('hf_finetune', run_name='__main__')\nexcept SystemExit:\n    pass\n"
               if args[0] == "-m" else args[1] + "\n")
            + f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)")
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True, cwd=NEUTRAL)
    line = next(line for line in proc.stderr.splitlines() if line.startswith("HEAVY="))
    return [m for m in line[len("HEAVY="):].split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compare", metavar="VENV", help="Another install's virtual environment, measured too.")
    parser.add_argument("--compare-label", default="compared", help="What the other install is, for the record.")
    args = parser.parse_args()
    installs = {"this checkout": sys.executable}
    if args.compare:
        installs[args.compare_label] = str(Path(args.compare) / "bin" / "python")
    times: dict[str, dict[str, list[float]]] = {name: {c: [] for c in COMMANDS} for name in installs}
    for _ in range(args.rounds):
        for name, python in installs.items():
            for command, command_args in COMMANDS.items():
                times[name][command].append(seconds(python, command_args))
    figures = {}
    for name, python in installs.items():
        medians = {c: statistics.median(t) for c, t in times[name].items()}
        base = medians["import huggingface_hub"]
        figures[name] = {c: {"median_seconds": round(m, 4), "ratio_to_import_huggingface_hub": round(m / base, 2),
                             "heavy_modules_imported": heavy_modules(python, COMMANDS[c])}
                         for c, m in medians.items()}
        for c, m in medians.items():
            print(f"{name:>16} | {c:24} | {m:7.3f} s | {m / base:6.1f}x import huggingface_hub")
    figures["rounds"] = args.rounds
    print(result_files.write("startup", figures))


if __name__ == "__main__":
    main()
