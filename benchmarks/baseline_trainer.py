"""The stock recipe hf-finetune is measured against, written the way the Hugging Face tutorials do it.

Tokenize with padding to the maximum length, plain `TrainingArguments` (fp32, random batches),
`Trainer`, then `evaluate`. Nothing here is tuned; ``bf16=True`` gives the best of the stock
recipes measured on an H200 (bf16 with padding to the maximum length).
"""

from __future__ import annotations

import numpy as np
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments


def train_baseline(model_path, train, validation, labels, *, steps, batch_size, learning_rate, seed, max_length,
                   output_dir, bf16=False):
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    def tokenize(batch):
        return tokenizer(batch["text"], padding="max_length", truncation=True, max_length=max_length)

    train_ds = Dataset.from_dict(train).map(tokenize, batched=True)
    eval_ds = Dataset.from_dict(validation).map(tokenize, batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)})

    def compute_metrics(eval_pred):
        predictions = np.argmax(eval_pred.predictions, axis=-1)
        return {"accuracy": float((predictions == eval_pred.label_ids).mean())}

    args = TrainingArguments(output_dir=output_dir, per_device_train_batch_size=batch_size,
                             per_device_eval_batch_size=batch_size, learning_rate=learning_rate, max_steps=steps,
                             seed=seed, report_to="none", save_strategy="no", disable_tqdm=True,
                             bf16=bf16, **({"use_cpu": True} if bf16 and not torch.cuda.is_available() else {}))
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                      compute_metrics=compute_metrics)
    output = trainer.train()
    metrics = trainer.evaluate()
    real_tokens = sum(sum(mask) for mask in train_ds["attention_mask"])
    return {"train_runtime": output.metrics["train_runtime"], "samples": steps * batch_size,
            "real_tokens_per_epoch": real_tokens, "n_train": len(train_ds), "accuracy": metrics["eval_accuracy"]}
