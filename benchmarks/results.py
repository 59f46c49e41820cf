"""Benchmark results as JSON under benchmarks/results/: the figures, and what it takes to trust them (the
command, the machine, the package versions, the date). The README's tables are rendered from these files
(benchmarks/readme_tables.py) and a test checks that they match."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
LOWER_IS_BETTER = {"mse"}   # headline metrics where a smaller figure is the better one


def run_offline(task: str, flags: list[str]) -> tuple[float, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """`hf-finetune TASK FLAGS` in a fresh process, offline, with a private cache (nothing reused from an
    earlier run): its wall time, metrics.json, run_info.json and run_config.yaml. Exits on a failed run."""
    import subprocess
    import tempfile

    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=f"{tmp}/hf", HF_FINETUNE_CACHE=f"{tmp}/cache",
                   HF_HUB_DISABLE_TELEMETRY="1")
        out = Path(tmp) / "run"
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "hf_finetune", task, "--output-dir", str(out), *flags], env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(f"{task} {shlex.join(flags)} failed:\n{proc.stderr[-3000:]}")
        return (wall, json.loads((out / "metrics.json").read_text()), json.loads((out / "run_info.json").read_text()),
                yaml.safe_load((out / "run_config.yaml").read_text()))


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "platform": platform.platform()}
    try:
        info["cpu_bf16_instructions"] = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        info["cpu_bf16_instructions"] = None
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def versions() -> dict[str, str]:
    from hf_finetune.training import _versions

    return _versions()


def write(name: str, figures: dict[str, Any], command: list[str] | None = None) -> Path:
    """Write ``figures`` with their provenance to benchmarks/results/<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {"command": shlex.join(command or [Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
              "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), "versions": versions(),
              "figures": figures}
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def read(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / f"{name}.json").read_text())
