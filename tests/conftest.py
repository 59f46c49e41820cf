"""Shared fixtures: an isolated, offline environment and tiny models/data for fast runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def reviews_csv(tmp_path) -> Path:
    """A small real-looking review table with non-standard column names and star labels."""
    rows = []
    good = ["great product, works well", "really happy with it", "excellent value and fast", "love it, five stars",
            "does exactly what it says", "superb quality"]
    bad = ["broke after a day", "waste of money", "terrible, would not buy again", "arrived damaged",
           "worst purchase ever", "stopped working quickly"]
    for i in range(60):
        rows.append((good[i % len(good)] + f" #{i}", 5))
        rows.append((bad[i % len(bad)] + f" #{i}", 1))
    path = tmp_path / "reviews.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write("review,stars\n")
        for text, stars in rows:
            f.write(f"\"{text}\",{stars}\n")
    return path


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))
