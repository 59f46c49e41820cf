"""Shared fixtures: an isolated, offline environment and tiny models/data for fast runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# The CLI imports datasets and transformers only when a command needs them, and their loggers keep the
# sys.stderr they find then: from an in-process CLI call, one test's captured stream, closed after it
# ("--- Logging error ---" in a later test). Imported here, they keep the session's stream.
import datasets  # noqa: F401,E402
import transformers  # noqa: F401,E402

REPO = Path(__file__).resolve().parents[1]
RUN_SLOW = os.environ.get("RUN_SLOW", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    """Tests marked `slow` (kill loops, Jobs, CI venvs, long learning runs) run only with RUN_SLOW=1, as in
    transformers: `pytest` alone is the quick tier; `RUN_SLOW=1 pytest -m slow` the rest."""
    if RUN_SLOW:
        return
    skip = pytest.mark.skip(reason="slow: set RUN_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def session_env(tmp_path_factory) -> dict[str, str]:
    """Environment for CLI subprocesses: offline, private caches, no telemetry."""
    root = tmp_path_factory.mktemp("env")
    env = dict(os.environ)
    env.update(
        HF_HOME=str(root / "hf_home"),
        HF_FINETUNE_CACHE=str(root / "hf_finetune_cache"),
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
        COLUMNS="120",
    )
    env.pop("HF_TOKEN", None)
    return env


@pytest.fixture(autouse=True)
def _isolated(session_env, monkeypatch):
    """The same isolation for in-process calls of the API and CLI."""
    for key in ("HF_HOME", "HF_FINETUNE_CACHE", "HF_HUB_DISABLE_TELEMETRY", "HF_HUB_DISABLE_UPDATE_CHECK",
                "TOKENIZERS_PARALLELISM"):
        monkeypatch.setenv(key, session_env[key])
    monkeypatch.delenv("HF_TOKEN", raising=False)


def run_cli(args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: int = 600):
    """Run the real console entry point in a subprocess (python -m hf_finetune)."""
    return subprocess.run([sys.executable, "-m", "hf_finetune", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def cli(capsys):
    """The CLI's own entry point run in this process: as `python -m hf_finetune`, without the seconds a new
    interpreter spends importing torch. For commands that need no environment of their own (Hub
    endpoints and tokens are read at import time by huggingface_hub: those tests use run_cli)."""
    from hf_finetune.cli import main

    def call(args: list) -> subprocess.CompletedProcess:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)

    return call


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT with the embedded model's real tokenizer, random weights.

    Only for tests of plumbing (data paths, errors, configs), where what is learned doesn't matter.
    """
    from transformers import AutoTokenizer, BertConfig, BertModel

    from hf_finetune import embedded

    source = embedded.MODELS["all-MiniLM-L6-v2"].locate()
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    path = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)   # the same random weights on every run, so a failure reproduces
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_reviews_csv(path: Path) -> Path:
    """A small real-looking review table with non-standard column names (review, stars) and star labels."""
    rows = []
    good = ["great product, works well", "really happy with it", "excellent value and fast", "love it, five stars",
            "does exactly what it says", "superb quality"]
    bad = ["broke after a day", "waste of money", "terrible, would not buy again", "arrived damaged",
           "worst purchase ever", "stopped working quickly"]
    for i in range(60):
        rows.append((good[i % len(good)] + f" #{i}", 5))
        rows.append((bad[i % len(bad)] + f" #{i}", 1))
    with path.open("w", encoding="utf-8") as f:
        f.write("review,stars\n")
        for text, stars in rows:
            f.write(f"\"{text}\",{stars}\n")
    return path


@pytest.fixture(scope="session")
def tiny_run_data(tmp_path_factory) -> Path:
    """The reviews table the shared tiny run trains on (its columns: review, stars), in a folder of its own."""
    return write_reviews_csv(tmp_path_factory.mktemp("tiny-run-data") / "reviews.csv")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, session_env, tiny_model, tiny_run_data) -> Path:
    """One tiny finished sentiment run (the tiny BERT on a local reviews table), shared by every test that only
    reads a finished run; a test that changes it works on a copy."""
    data = tiny_run_data
    out = tmp_path_factory.mktemp("tiny-run") / "run"
    proc = run_cli(["sentiment", "--model", str(tiny_model), "--dataset", str(data), "--text-column", "review",
                    "--output-dir", str(out), "--max-length", "16", "--num-train-epochs", "1",
                    "--per-device-train-batch-size", "16"], session_env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return out


@pytest.fixture
def reviews_csv(tmp_path) -> Path:
    return write_reviews_csv(tmp_path / "reviews.csv")


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def tiny_seq2seq(tmp_path_factory) -> Path:
    """A 1-layer, 32-wide T5 with the embedded encoder's WordPiece tokenizer, random weights (plumbing only)."""
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    from hf_finetune import embedded

    tokenizer = AutoTokenizer.from_pretrained(str(embedded.MODELS["all-MiniLM-L6-v2"].locate()))
    config = T5Config(vocab_size=tokenizer.vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=1,
                      num_decoder_layers=1, num_heads=2, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.sep_token_id, decoder_start_token_id=tokenizer.pad_token_id)
    path = tmp_path_factory.mktemp("tiny-t5")
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory) -> Path:
    """A 1-layer, 32-wide ViT for 32x32 images with its image processor, random weights (plumbing only)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=64, num_labels=2)
    path = tmp_path_factory.mktemp("tiny-vit")
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """A tiny image folder written by the test: one sub-folder per class, plus one corrupt file."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for label, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (root / label).mkdir(parents=True)
        for i in range(24):
            pixels = np.clip(rng.normal(colour, 25, size=(20, 20, 3)), 0, 255).astype("uint8")
            Image.fromarray(pixels).save(root / label / f"{label}_{i}.png")
    (root / "red" / "broken.png").write_bytes(b"this is not a png")
    return root


@pytest.fixture
def summaries_jsonl(tmp_path) -> Path:
    rows = []
    topics = ["the council approved a new park", "a storm closed the coastal road", "the team won the final",
              "prices of bread rose again", "the library opens on sundays now"]
    for i in range(60):
        topic = topics[i % len(topics)]
        rows.append({"document": f"Reports on day {i} said that {topic}. Officials said more details would follow. "
                                 f"Residents reacted in different ways.", "summary": f"{topic.capitalize()}."})
    path = tmp_path / "news.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path
