"""hf-finetune: fine-tune Hugging Face checkpoints from one command or one function call.

Importing the package is instant: ``finetune`` and the rest are imported on first use (as
huggingface_hub's ``_attach`` does), so ``hf-finetune --help`` never pays for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {"finetune": "api", "resolve_config": "api", "FinetuneError": "errors", "FinetuneResult": "training",
         "RunInfo": "run_info"}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:   # for type checkers and IDEs: the names as if imported eagerly
    from .api import finetune, resolve_config
    from .errors import FinetuneError
    from .run_info import RunInfo
    from .training import FinetuneResult
