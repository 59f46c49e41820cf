"""A linear-probe start for a new head: fit it on the frozen backbone's features before fine-tuning.

A freshly initialised head sends random gradients into the pretrained backbone for the first steps, and on a
CPU budget of one or two epochs those steps are a large share of the run: on a few thousand examples a
classifier trained this way can end up predicting the majority class. Fitting the head first by a classical
linear model on features of the unchanged backbone (one forward pass over the training split, no
back-propagation) and fine-tuning everything from there ("LP-FT", Kumar et al., ICLR 2022) starts training
from a head that is already as good as a linear probe. The task kind decides how a head is fitted (a
logistic regression per class or per label, a ridge regression); the strength of its regularisation is
picked on the validation split.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import numpy as np

log = logging.getLogger("hf_finetune")

# Inverse regularisation strengths tried on the validation split (standardised features): logistic regression's
# C, and 1 / ridge regression's alpha.
STRENGTHS = (0.0001, 0.001, 0.01, 0.1, 1.0)
SCALE_FLOOR = 0.1   # of the median feature's standard deviation


def head_layer(model: Any, outputs: int) -> Any:
    """The model's output layer: its last ``nn.Linear`` with one output per label (BERT's ``classifier``,
    RoBERTa's ``classifier.out_proj``, EfficientNet's ``classifier``), or None."""
    import torch

    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == outputs]
    return layers[-1] if layers else None


def features(trainer: Any, dataset: Any, layer: Any) -> tuple[np.ndarray, np.ndarray]:
    """The inputs of ``layer`` (the features the head sees) for every example of ``dataset``, and the
    examples' targets, from one pass of the model in evaluation mode."""
    import torch

    captured: list[Any] = []
    features_, targets = [], []
    handle = layer.register_forward_pre_hook(lambda module, args: captured.append(args[0].detach().float()))
    model, gather = trainer.model, trainer.accelerator.gather_for_metrics
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in trainer.get_eval_dataloader(dataset):
                batch = trainer._prepare_inputs(batch)
                labels = batch.pop("labels")
                with trainer.autocast_smart_context_manager():
                    model(**batch)
                inputs = captured.pop()
                # every process sees the whole split (as evaluation does), so all fit the same head
                features_.append(gather(inputs.reshape(inputs.shape[0], -1)).cpu().numpy())
                targets.append(gather(labels.float()).cpu().numpy())
    finally:
        handle.remove()
        model.train(was_training)
    return np.concatenate(features_), np.concatenate(targets)


def standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's mean and scale. A feature (nearly) constant on the training examples would get a weight
    of coefficient / tiny std, and when it varies more in training (batch norm on batch statistics, dropout)
    that weight swamps the logits (solar cells: a validation loss of 32, accuracy below the majority class);
    so a scale is at least SCALE_FLOOR of the median feature's."""
    mean, scale = features.mean(axis=0), features.std(axis=0)
    return mean, np.maximum(scale, SCALE_FLOOR * float(np.median(scale)) or 1.0)


def fit(trainer: Any, layer: Any, fit_head: Callable, train: Any, validation: Any) -> dict[str, Any]:
    """Fit ``layer`` by ``fit_head(train_x, train_y, validation_x, validation_y, outputs)`` -> (weight, bias,
    record) on standardised features; the standardisation is folded into the layer's weights. Returns the
    record (what was fitted, its validation score) with the features' size and the time it took."""
    import torch

    started = time.perf_counter()
    train_x, train_y = features(trainer, train, layer)
    validation_x, validation_y = features(trainer, validation, layer)
    mean, scale = standardisation(train_x)
    weight, bias, record = fit_head((train_x - mean) / scale, train_y, (validation_x - mean) / scale, validation_y,
                                    layer.out_features)
    weight = np.asarray(weight, dtype=np.float64).reshape(layer.out_features, -1) / scale
    bias = np.asarray(bias, dtype=np.float64).reshape(-1) - weight @ mean
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=layer.weight.dtype))
        if layer.bias is not None:
            layer.bias.copy_(torch.as_tensor(bias, dtype=layer.bias.dtype))
    record.update(features=int(train_x.shape[1]), examples=int(train_x.shape[0]),
                  seconds=round(time.perf_counter() - started, 1))
    return record


def copy_head(fitted: Any, model: Any, outputs: int) -> None:
    """Give ``model`` the head fitted on ``fitted``: a search fits the probe once, on the base model, and
    every trial starts from it, as the trained run does (the probe depends on the base model and the data,
    not on the values searched)."""
    import torch

    with torch.no_grad():
        head_layer(model, outputs).load_state_dict(head_layer(fitted, outputs).state_dict())


def pick(candidates: dict[float, Any], score: Callable[[Any], float]) -> tuple[float, Any, float]:
    """The candidate (strength -> fitted model) with the best validation score: (strength, model, score)."""
    scored = [(score(model), strength, model) for strength, model in candidates.items()]
    best = max(scored, key=lambda s: s[0])
    return best[1], best[2], float(best[0])
