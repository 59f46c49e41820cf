"""hf-finetune: fine-tune Hugging Face checkpoints from one command or one function call."""

__version__ = "0.1.0"

from .api import finetune, resolve_config  # noqa: E402
from .errors import FinetuneError  # noqa: E402
from .training import FinetuneResult  # noqa: E402

__all__ = ["finetune", "resolve_config", "FinetuneError", "FinetuneResult", "__version__"]
