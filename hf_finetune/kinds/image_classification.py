"""Image classification: one label per image.

Images are decoded and transformed lazily, batch by batch (``with_transform``), so a large image
folder costs no preprocessing pass and no disk; augmentation (random resized crop, optional
horizontal flip, or a small shift) is done with PIL, sizes and normalisation come from the model's own image
processor. ``remove_unused_columns`` stays off: the Trainer would otherwise drop the ``image``
column before the transform sees it (``KeyError: 'image'``).
"""

from __future__ import annotations

import io
import logging
import math
import random
from typing import Any

import numpy as np

from ..config import RunConfig
from ..errors import DataError
from . import baselines
from .base import SingleLabelClassification

log = logging.getLogger("hf_finetune")


def processor_size(processor: Any) -> tuple[int, int]:
    """(height, width) the model expects, from the processor's crop_size or size."""
    for attr in ("crop_size", "size"):
        size = getattr(processor, attr, None)
        if not size:
            continue
        if isinstance(size, int):
            return size, size
        size = dict(size)
        if "height" in size and "width" in size:
            return int(size["height"]), int(size["width"])
        if "shortest_edge" in size:
            return int(size["shortest_edge"]), int(size["shortest_edge"])
    return 224, 224


def random_resized_crop(image: Any, rng: random.Random, scale: tuple[float, float] = (0.6, 1.0)) -> Any:
    width, height = image.size
    area = width * height * rng.uniform(*scale)
    ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    w = int(round(min(width, np.sqrt(area * ratio))))
    h = int(round(min(height, np.sqrt(area / ratio))))
    left, top = rng.randint(0, width - w), rng.randint(0, height - h)
    return image.crop((left, top, left + w, top + h))


def random_shift(image: Any, rng: random.Random, fraction: float = 0.125, degrees: float = 10.0) -> Any:
    """Move the image by up to `fraction` of its size and turn it by up to `degrees`, filling with its corner
    colour: unlike a crop it keeps every stroke, which matters when the object fills the frame (a digit)."""
    from PIL import Image

    width, height = image.size
    shift = (rng.uniform(-fraction, fraction) * width, rng.uniform(-fraction, fraction) * height)
    return image.rotate(rng.uniform(-degrees, degrees), resample=Image.BILINEAR, translate=shift,
                        fillcolor=image.getpixel((0, 0)))


def check_images(split: Any, name: str) -> tuple[Any, list[str]]:
    """Drop rows whose image can't be decoded; return the split and the bad files (by path)."""
    from datasets import Image as ImageFeature
    from PIL import Image

    raw = split.cast_column("image", ImageFeature(decode=False))
    bad_rows, bad_names = [], []
    for i, item in enumerate(raw["image"]):
        try:
            source = item.get("bytes") or item.get("path")
            handle = io.BytesIO(source) if isinstance(source, bytes) else source
            with Image.open(handle) as image:
                image.load()
        except Exception:  # noqa: BLE001 - any decoding failure means "not an image"
            bad_rows.append(i)
            bad_names.append(item.get("path") or f"{name} row {i}")
    if bad_rows:
        bad = set(bad_rows)
        split = split.select([i for i in range(len(split)) if i not in bad])
    return split, bad_names


class ImageClassification(SingleLabelClassification):
    name = "image-classification"
    roles = ("image", "label")
    options = ("image_column", "label_column", "label_names", "image_size", "image_augmentation", "linear_probe")
    input_role = "image"
    tokenizes = False
    card_hyperparameters = ("image_size", "image_augmentation", "linear_probe")   # what else shapes the run
    predict_classes = ("AutoImageProcessor", "AutoModelForImageClassification")
    # measured on the embedded default: bf16 autocast on CPU trained 5x faster but test accuracy fell from
    # 0.84 to 0.64 (EfficientNet's depthwise convolutions and batch norm), so CPUs stay in fp32 unless asked
    bf16_on_cpu = False

    def preprocess(self, data: Any, processor: Any, config: RunConfig) -> tuple[Any, bool]:
        import torch
        from datasets import DatasetDict
        from PIL import Image, ImageOps

        for split in list(data.splits):
            data.splits[split], bad = check_images(data.splits[split], split)
            if bad:
                log.warning("Skipped %d file(s) that are not readable images in %s: %s%s", len(bad), split,
                            ", ".join(bad[:5]), " ..." if len(bad) > 5 else "")
                data.dropped[split] = data.dropped.get(split, 0) + len(bad)
            if len(data.splits[split]) == 0:
                raise DataError(f"No readable image is left in the {split} split.")
        if not config.image_size and "train" in data.splits:
            self.fit_size_to_images(data.splits["train"], processor, config)
        if config.image_size:
            # one size for the processor's resize and crop, and for the saved preprocessor_config.json
            square = {"height": config.image_size, "width": config.image_size}
            if hasattr(processor, "size"):
                size = processor.size
                square_kind = getattr(size, "height", None) is not None or (isinstance(size, dict) and "height" in size)
                processor.size = dict(square) if square_kind else {"shortest_edge": config.image_size}
            if getattr(processor, "crop_size", None):
                processor.crop_size = dict(square)
        flip = "flip" in config.image_augmentation
        crop = "crop" in config.image_augmentation
        shift = config.image_augmentation == "shift"
        target = processor_size(processor)[::-1]   # PIL sizes are (width, height)
        rng = self.augmentation_rng = random.Random(config.seed)

        def to_inputs(images: list[Any], labels: list[int], train: bool) -> dict[str, Any]:
            images = [img.convert("RGB") for img in images]
            if train:
                if crop:
                    images = [random_resized_crop(img, rng) for img in images]
                if shift:
                    # a small scan is enlarged first, so that the shift and turn are sub-pixel smooth
                    images = [random_shift(img.resize(target, Image.BILINEAR) if img.width < target[0] else img, rng)
                              for img in images]
                if flip:
                    images = [ImageOps.mirror(img) if rng.random() < 0.5 else img for img in images]
            pixels = processor(images=images, return_tensors="pt")["pixel_values"]
            return {"pixel_values": pixels, "labels": torch.tensor(labels)}

        def train_transform(batch: dict[str, list]) -> dict[str, Any]:
            return to_inputs(batch["image"], batch["label"], True)

        def eval_transform(batch: dict[str, list]) -> dict[str, Any]:
            return to_inputs(batch["image"], batch["label"], False)

        out = DatasetDict({name: split.with_transform(train_transform if name == "train" else eval_transform)
                           for name, split in data.splits.items()})
        return out, False

    SIZE_SAMPLE = 100   # training images whose size is read to choose an image size
    SIZE_STEP = 32
    SIZE_MIN = 64       # below it a convolutional backbone's last feature map is a pixel or two
    # convolutional backbones, which take any input size (a ViT's position embeddings are made for one)
    ANY_SIZE = ("efficientnet", "mobilenet_v1", "mobilenet_v2", "resnet", "convnext", "convnextv2", "regnet", "bit")

    def fit_size_to_images(self, train: Any, processor: Any, config: RunConfig) -> None:
        """Without --image-size: images smaller than the model's input size are not enlarged to it, which would
        cost (model size / image size)^2 the compute for no detail they have (64 px satellite tiles at 224 px:
        12x); the size is the training images' median shorter side, rounded up to a multiple of 32 (64 at least). The choice
        goes into the run's config (run_config.yaml repeats it) and is said in the output and the card."""
        if getattr(self.model_config, "model_type", None) not in self.ANY_SIZE:
            return
        model_side = min(processor_size(processor))
        sample = train.select(range(min(len(train), self.SIZE_SAMPLE)))["image"]
        native = int(np.median([min(image.size) for image in sample]))
        chosen = max(self.SIZE_MIN, math.ceil(native / self.SIZE_STEP) * self.SIZE_STEP)
        if chosen < model_side:
            config.image_size = chosen
            self.choices.append(
                f"image size {chosen} px: the training images' own size (median shorter side {native} px); the "
                f"model's {model_side} px would only enlarge them, at {(model_side / chosen) ** 2:.0f}x the compute. "
                "--image-size sets another.")

    def prepare_model(self, model: Any, config: RunConfig) -> None:
        """Called as each training starts (a search trial, or the run): its augmentations start from the seed
        too, so a trial and the run trained with its values see the same images (without loader workers,
        this process draws them, and the trials before would have moved the generator on)."""
        super().prepare_model(model, config)
        if getattr(self, "augmentation_rng", None) is not None:
            self.augmentation_rng.seed(config.seed)

    def collator(self, processor: Any, model: Any) -> Any:
        import torch

        def collate(examples: list[dict[str, Any]]) -> dict[str, Any]:
            return {"pixel_values": torch.stack([e["pixel_values"] for e in examples]),
                    "labels": torch.stack([e["labels"] for e in examples])}

        return collate

    def training_arguments(self, config: RunConfig) -> dict[str, Any]:
        # no token lengths to group by; images are all resized to one shape anyway
        return {"remove_unused_columns": False, "train_sampling_strategy": "random"}

    def time_levers(self, config: RunConfig, train: Any, processor: Any) -> list[tuple[str, float]]:
        """A smaller --image-size: a step's cost follows the pixels (decoding the files does not, so this is an
        upper bound of the saving)."""
        side = max(processor_size(processor))
        return [(f"--image-size {size}", (size / side) ** 2) for size in (192, 160, 128, 96, 64) if size < 0.9 * side]

    def example(self, split: Any) -> str | None:
        return "example.png" if len(split) else None

    def describe(self, split: Any, index: int) -> str:
        return f"test image #{index}"

    def save_example(self, split: Any, path: Any) -> None:
        """An image from the test split next to the model, so the card's snippet runs as written."""
        if len(split):
            split.with_format(None)[0]["image"].convert("RGB").save(path)

    def real_tokens(self, split: Any) -> int | None:
        return None

    # an RBF SVC costs O(n^2) in the training images: beyond this many it is no longer a cheap baseline
    SVC_MAX_TRAIN = 10_000

    def baseline(self, train: Any, test: Any, labels: list[str] | None, config: RunConfig) -> dict | None:
        """The majority class; also a plain SVC on small pixels, where the training set is small enough."""
        result = baselines.majority_class(train["label"], test["label"], labels or [])
        if len(train) <= self.SVC_MAX_TRAIN:
            train, test = train.with_format(None), test.with_format(None)
            result["also"] = [baselines.svc_on_pixels(train["image"], train["label"], test["image"], test["label"])]
        return result

    # -- serving ------------------------------------------------------------------------------------------
    @classmethod
    def serves(cls, model_config: dict) -> bool:
        return "ForImageClassification" in " ".join(model_config.get("architectures") or [])

    def encode_inputs(self, processor: Any, inputs: list[str], max_length: int) -> Any:
        """Image files, whatever their mode, as the model's pixel values."""
        from PIL import Image

        images = []
        for path in inputs:
            try:
                with Image.open(path) as image:
                    images.append(image.convert("RGB"))
            except Exception:  # noqa: BLE001 - any decoding failure means "not an image"
                raise DataError(f"{path} is not a readable image.") from None
        return processor(images=images, return_tensors="pt")

    @classmethod
    def usage(cls, model_ref: str, example: str | None, prefix: str = "") -> str:
        local = not _looks_like_repo_id(model_ref)
        load = (f"image = Image.open({(model_ref.rstrip('/') + '/example.png')!r})" if local else
                f"image = Image.open(hf_hub_download({model_ref!r}, \"example.png\"))")
        imports = "from PIL import Image\nfrom transformers import pipeline\n"
        if not local:
            imports = "from huggingface_hub import hf_hub_download\n" + imports
        return (f"{imports}\n"
                f"classifier = pipeline(\"image-classification\", model={model_ref!r})\n"
                f"{load}  # an image from the test split, saved with the model\n"
                "print(classifier(image))")


def _looks_like_repo_id(ref: str) -> bool:
    import os

    return ref.count("/") == 1 and not os.path.exists(ref) and not ref.startswith((".", "/", "~"))
