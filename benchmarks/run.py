"""hf-finetune against the stock Trainer recipe, side by side in one process.

    python benchmarks/run.py              # CPU: embedded model and data (offline)
    python benchmarks/run.py --mode gpu   # GPU: BERT-base from its config, IMDB-like lengths, no download

Both runs use the same model, data, seed and number of optimizer steps; the table gives training
samples/s, real (non-pad) tokens/s, peak memory and the final validation accuracy of each, and the
ratios. Run it on a quiet machine; the runs are measured in the same process, one after the other,
after a short unreported warm-up of both.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results as result_files  # noqa: E402
from baseline_trainer import train_baseline  # noqa: E402


class RealTokens:
    """Non-pad input tokens the model actually trains on, counted where the model receives them (a forward
    pre-hook on the word embeddings, in training mode), the same way for both engines."""

    def __init__(self, pad_id: int):
        self.pad_id, self.count = pad_id, 0

    def __enter__(self):
        def hook(module, args):
            if isinstance(module, torch.nn.Embedding) and module.num_embeddings > 1000 and module.training:
                self.count += int((args[0] != self.pad_id).sum())

        self.handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


class PeakMemory:
    """Peak process RSS (CPU) or peak allocated CUDA memory during a block, in MiB."""

    def __enter__(self):
        self.cuda = torch.cuda.is_available()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        self.process, self.peak, self.stop = psutil.Process(), 0, threading.Event()
        self.base = self.process.memory_info().rss

        def sample():
            while not self.stop.wait(0.05):
                self.peak = max(self.peak, self.process.memory_info().rss)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.mib = (torch.cuda.max_memory_allocated() if self.cuda else max(self.peak - self.base, 0)) / 2**20


def cpu_data(n_train: int, n_eval: int, seed: int):
    from hf_finetune import data as data_mod, resolve_config

    template, config = resolve_config("sentiment", max_train_samples=n_train, max_eval_samples=n_eval, seed=seed)
    prepared = data_mod.prepare(template, config)
    as_dict = lambda split: {"text": split["text"], "label": split["label"]}  # noqa: E731
    from hf_finetune import embedded

    model = str(embedded.model(config.model).locate()) if embedded.is_embedded(config.model) else config.model
    return as_dict(prepared.splits["train"]), as_dict(prepared.splits["validation"]), prepared.labels, model


def gpu_data(n_train: int, n_eval: int, seed: int, tmp: Path):
    """BERT-base (random init, its config's shape) and texts of IMDB-like lengths (lognormal, mean ~260,
    median ~229 tokens) over a made-up 30,522-word vocabulary: no download and no embedded asset, so
    the device machine needs only the Python packages. A speed test: the CPU mode checks accuracy."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words: set[str] = set()
    while len(words) < 30522 - 5:
        words.add("".join(rng.choice(letters, size=rng.integers(4, 9))))
    vocab = sorted(words)
    folder = tmp / "bert-base-config"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *vocab]
    tokenizer = BertTokenizer(vocab={t: i for i, t in enumerate(tokens)}, model_max_length=512)
    tokenizer.save_pretrained(folder)
    first_half = set(vocab[: len(vocab) // 2])

    def make(n):
        lengths = np.clip(rng.lognormal(np.log(229), 0.55, n).astype(int), 16, 510)   # + [CLS], [SEP]
        texts = [rng.choice(vocab, size=k) for k in lengths]
        # label: whether words from the first half of the vocabulary are the majority (about 50/50)
        labels = [int(sum(w in first_half for w in t) * 2 > len(t)) for t in texts]
        return {"text": [" ".join(t) for t in texts], "label": labels}

    BertForSequenceClassification(BertConfig(num_labels=2, vocab_size=len(tokenizer))).save_pretrained(folder)
    return make(n_train), make(n_eval), ["0", "1"], str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sampling", action="append", default=None,
                        choices=["length_buckets", "group_by_length", "random"],
                        help="hf-finetune's train_sampling_strategy; repeat for one row each (default: length_buckets).")
    parser.add_argument("--fp32-rows", action="store_true",
                        help="Also run each hf-finetune row in fp32 (shows what bf16 adds where it is on).")
    parser.add_argument("--compile", action="store_true", help="Add an hf-finetune row with torch.compile.")
    parser.add_argument("--bf16-baseline", action=argparse.BooleanOptionalAction, default=None,
                        help="Add the best stock recipe (bf16, padding to max length) as a second baseline "
                             "(default: on in GPU mode).")
    parser.add_argument("--no-stock", action="store_true", help="Only hf-finetune rows (e.g. a long --compile run).")
    parser.add_argument("--json", default=None, help="Also write the results here.")
    parser.add_argument("--results", default=None,
                        help="Name of the results file to write under benchmarks/results/ (with the command, machine, "
                             "versions and date); the README's tables are rendered from it.")
    args = parser.parse_args()
    gpu = args.mode == "gpu"
    if gpu and not torch.cuda.is_available():
        print("warning: --mode gpu without a CUDA device: a smoke test of the harness only", file=sys.stderr)
    steps = args.steps or (300 if gpu else 40)
    batch = args.batch_size or 32
    max_length = 512 if gpu else 128
    samplings = args.sampling or ["length_buckets"]
    bf16_baseline = gpu if args.bf16_baseline is None else args.bf16_baseline
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from hf_finetune import finetune
    from hf_finetune.api import quiet_libraries

    quiet_libraries()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n_train, n_eval = steps * batch, (512 if steps * batch >= 512 else 16)
        if gpu:
            train, validation, labels, model = gpu_data(n_train, n_eval, args.seed, tmp)
            csv_dir = tmp / "data"
            csv_dir.mkdir()
            import pandas as pd

            pd.DataFrame(train).to_parquet(csv_dir / "train.parquet")
            pd.DataFrame(validation).to_parquet(csv_dir / "validation.parquet")
            pd.DataFrame(validation).to_parquet(csv_dir / "test.parquet")   # no split taken from train
            dataset = str(csv_dir)
        else:
            train, validation, labels, model = cpu_data(n_train, n_eval, args.seed)
            dataset = None
        from transformers import AutoTokenizer

        pad_id = AutoTokenizer.from_pretrained(model).pad_token_id or 0
        common = dict(learning_rate=5e-5, seed=args.seed)

        def ours(name: str, steps: int = steps, **extra) -> None:
            with PeakMemory() as memory, RealTokens(pad_id) as tokens:
                run = finetune("sentiment", model=model, dataset=dataset, output_dir=str(tmp / name), max_steps=steps,
                               per_device_train_batch_size=batch, per_device_eval_batch_size=64,
                               max_length=max_length, eval_strategy="no", max_train_samples=n_train,
                               max_eval_samples=n_eval, warmup_steps=0, weight_decay=0.0,
                               early_stopping_patience=None, quiet=True, **common, **extra)
            train_m = run.metrics["train"]
            compiled = extra.get("torch_compile", False)   # hooks inside a compiled graph don't count reliably
            results[name] = {
                "samples_per_s": steps * batch / train_m["train_runtime"],
                "real_tokens_per_s": None if compiled else tokens.count / train_m["train_runtime"],
                "peak_mib": memory.mib, "accuracy": run.metrics["validation"]["accuracy"]}

        def stock(name: str, bf16: bool, steps: int = steps) -> None:
            with PeakMemory() as memory, RealTokens(pad_id) as tokens:
                base = train_baseline(model, train, validation, labels, steps=steps, batch_size=batch,
                                      max_length=max_length, output_dir=str(tmp / "baseline"),
                                      learning_rate=common["learning_rate"], seed=args.seed, bf16=bf16)
            results[name] = {
                "samples_per_s": base["samples"] / base["train_runtime"],
                "real_tokens_per_s": tokens.count / base["train_runtime"],
                "peak_mib": memory.mib, "accuracy": base["accuracy"], "baseline": True}

        # warm-up, not reported: imports, allocator pools, CUDA context and kernels, so the first row
        # measured does not pay for them
        ours("warm-up", steps=2)
        if not args.no_stock:
            stock("warm-up stock", bf16=bf16_baseline, steps=2)
        results.clear()
        for sampling in samplings:
            ours(f"hf-finetune {sampling}", train_sampling_strategy=sampling)
            if args.fp32_rows:
                ours(f"hf-finetune {sampling} fp32", train_sampling_strategy=sampling, bf16=False)
        if args.compile:
            ours(f"hf-finetune {samplings[0]} +compile", train_sampling_strategy=samplings[0], torch_compile=True)
        if not args.no_stock:
            stock("stock Trainer", bf16=False)
        if bf16_baseline and not args.no_stock:
            stock("stock Trainer bf16", bf16=True)

    width = max(len(n) for n in results) + 2
    print(f"\nmode={args.mode} device={'cuda' if torch.cuda.is_available() else 'cpu'} steps={steps} batch={batch} "
          f"max_length={max_length} torch={torch.__version__} threads={torch.get_num_threads()}")
    print(f"{'':{width}s} {'samples/s':>10s} {'real tok/s':>11s} {'peak MiB':>9s} {'accuracy':>9s}")
    for name, r in results.items():
        tokens = f"{r['real_tokens_per_s']:11.0f}" if r["real_tokens_per_s"] is not None else f"{'n/a':>11s}"
        print(f"{name:{width}s} {r['samples_per_s']:10.1f} {tokens} {r['peak_mib']:9.0f} {r['accuracy']:9.4f}")
    for base_name, base_r in results.items():
        if not base_r.get("baseline"):
            continue
        for name, r in results.items():
            if not r.get("baseline"):
                print(f"{name} / {base_name}: {r['samples_per_s'] / base_r['samples_per_s']:.2f}x samples/s, "
                      f"accuracy {r['accuracy'] - base_r['accuracy']:+.4f}")
    figures = {"mode": args.mode, "steps": steps, "batch": batch, "max_length": max_length,
               "validation_examples": n_eval, "results": results}
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    if args.results:
        print(f"wrote {result_files.write(args.results, figures)}")


if __name__ == "__main__":
    main()
