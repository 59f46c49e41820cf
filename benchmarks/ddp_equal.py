"""One process or two (DDP over gloo on CPU), on the same data, seed and global batch: the same metrics?

    python benchmarks/ddp_equal.py            # writes benchmarks/results/ddp-equal.json

`hf-finetune sentiment` (the embedded MiniLM and tweets, a sample) twice: 1 process at batch 16, and 2 processes at
batch 8 each (`--num-processes 2`), with the sequential sampler so that both see the same 16 rows at each step.
Recorded: both runs' test and validation metrics, their differences, and the largest difference between the two
trained models' weights. Dropout stays on (the model as shipped), and each process draws its own masks, so the
two runs are not the same computation; tests/test_ddp.py checks the dropout-free case, where they are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results as result_files  # noqa: E402

RUN = ["--max-train-samples", "512", "--max-eval-samples", "200", "--max-test-samples", "400", "--max-length", "64",
       "--num-train-epochs", "1", "--train-sampling-strategy", "sequential", "--eval-strategy", "epoch",
       "--no-linear-probe", "--seed", "42"]
SETUPS = {"1 process, batch 16": (1, 16), "2 processes, batch 8 each": (2, 8)}


def train(folder: Path, processes: int, batch: int) -> tuple[dict, float, Path]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_FINETUNE_CACHE=str(folder / "cache"), TOKENIZERS_PARALLELISM="false")
    out = folder / "run"
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hf_finetune", "sentiment", *RUN, "--output-dir", str(out),
                           "--per-device-train-batch-size", str(batch), "--num-processes", str(processes)],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{processes} process(es) failed:\n{proc.stderr[-3000:]}")
    return json.loads((out / "metrics.json").read_text()), time.perf_counter() - started, out


def main() -> None:
    from safetensors.torch import load_file

    figures: dict = {"settings": " ".join(RUN), "runs": {}}
    weights = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (processes, batch) in SETUPS.items():
            folder = Path(tmp) / f"p{processes}"
            folder.mkdir()
            metrics, wall, out = train(folder, processes, batch)
            figures["runs"][name] = {"test": metrics["test"], "validation": metrics["validation"],
                                     "train_loss": metrics["train"]["train_loss"], "steps": metrics["train"]["steps"],
                                     "wall_seconds": round(wall, 1)}
            weights[name] = load_file(out / "model.safetensors")
    one, two = (figures["runs"][name] for name in SETUPS)
    figures["difference"] = {split: {k: abs(one[split][k] - two[split][k]) for k in ("accuracy", "f1", "loss")}
                             for split in ("test", "validation")}
    a, b = weights.values()
    figures["difference"]["max_weight"] = max((a[k] - b[k]).abs().max().item() for k in a)
    path = result_files.write("ddp-equal", figures)
    print(json.dumps(figures["difference"], indent=2), f"\nwritten: {path}")


if __name__ == "__main__":
    main()
