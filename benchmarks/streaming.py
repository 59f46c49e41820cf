"""Peak memory and disk of a streamed run as the data set grows: 10k, 100k and 1M rows.

    python benchmarks/streaming.py              # writes benchmarks/results/streaming.json
    python benchmarks/streaming.py --quick      # 10k and 100k only (a check, not the README's figures)

A JSON Lines file of short labelled reviews is generated (deterministically, into a temp folder; never committed)
at each size and trained on with `hf-finetune sentiment --streaming --max-steps 20` by a tiny BERT (2 layers,
32 wide, the embedded model's tokenizer, random weights: the figures are of the data path, not of learning), in a
fresh process with caches of its own. Per run: the process's peak RSS (``os.wait4``'s rusage of that child) and
the disk its caches and output dir take afterwards (the data file itself not counted). The same run without
--streaming is measured at 10k and 100k for contrast (it reads, copies and tokenizes every row first).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results as result_files  # noqa: E402

SIZES = (10_000, 100_000, 1_000_000, 3_000_000)   # 3M: past datasets' 10 MiB JSON read chunks, RSS stays put
NOT_STREAMED = (10_000, 100_000)   # the whole-data run at 1M rows would take most of the benchmark's time
FLAGS = ["--max-steps", "20", "--per-device-train-batch-size", "32", "--max-length", "32", "--eval-strategy", "steps",
         "--eval-steps", "10", "--max-eval-samples", "200", "--max-test-samples", "200", "--no-linear-probe",
         "--early-stopping-patience", "0"]
GOOD = ["great product", "really happy with it", "excellent value for money", "love it", "works well", "five stars"]
BAD = ["broke after a day", "waste of money", "terrible quality", "arrived damaged", "worst purchase", "one star"]


def write_rows(path: Path, rows: int) -> None:
    """``rows`` short reviews with labels, the same bytes on every run (seeded)."""
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            label = rng.choice(("pos", "neg"))
            f.write(json.dumps({"text": f"{rng.choice(GOOD if label == 'pos' else BAD)} #{i}", "label": label}) + "\n")


def tiny_model(folder: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from hf_finetune import embedded

    tokenizer = AutoTokenizer.from_pretrained(str(embedded.MODELS["all-MiniLM-L6-v2"].locate()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def disk_bytes(*folders: Path) -> int:
    return sum(p.stat().st_size for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file())


def measure(model: Path, data: Path, streaming: bool, work: Path) -> dict:
    """One run in a fresh process with caches of its own: wall time, peak RSS, disk afterwards."""
    home, cache, out = work / "hf_home", work / "cache", work / "run"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(home), HF_FINETUNE_CACHE=str(cache),
               HF_HUB_DISABLE_TELEMETRY="1", TOKENIZERS_PARALLELISM="false")
    command = [sys.executable, "-m", "hf_finetune", "sentiment", "--model", str(model), "--dataset", str(data),
               "--output-dir", str(out), *FLAGS, *(["--streaming"] if streaming else [])]
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{output[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"streaming": streaming, "wall_seconds": round(wall, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "disk_mib": {"datasets_and_hub_cache": round(disk_bytes(home) / 2**20, 2),
                         "tokenization_cache": round(disk_bytes(cache) / 2**20, 2),
                         "output_dir": round(disk_bytes(out) / 2**20, 2)},
            "disk_total_mib": round(disk_bytes(home, cache, out) / 2**20, 2),
            "steps": metrics["train"]["steps"], "train_examples": metrics["train"]["examples"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows only (not written to results/)")
    args = parser.parse_args()
    sizes = SIZES[:2] if args.quick else SIZES
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_model(Path(tmp) / "model")
        for rows in sizes:
            data = Path(tmp) / f"rows-{rows}.jsonl"
            write_rows(data, rows)
            for streaming in (True, False):
                if not streaming and rows not in NOT_STREAMED:
                    continue
                work = Path(tmp) / f"work-{rows}-{streaming}"
                record = {"rows": rows, "file_mib": round(data.stat().st_size / 2**20, 2),
                          **measure(model, data, streaming, work)}
                print(json.dumps(record), flush=True)
                runs.append(record)
            data.unlink()
    if args.quick:
        return
    figures = {"what": "hf-finetune sentiment on a generated JSON Lines file, tiny BERT, " + " ".join(FLAGS),
               "runs": runs}
    print(result_files.write("streaming", figures))


if __name__ == "__main__":
    main()
