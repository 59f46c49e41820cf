"""Hub repo ids, checked at the door: a bad ``--push-to-hub`` target fails in the first second, not after
training. A leaf module (it imports only ``errors``), so the config, the Hub helpers and the Jobs code can
all use it without importing each other."""

from __future__ import annotations

from .errors import ConfigError


def check_repo_id(repo_id: str) -> str:
    """Refuse an id the Hub would refuse, before any training or request."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ConfigError(f"{repo_id!r} is not a valid Hub repo id: {str(err).splitlines()[0]}",
                          "Use 'name' or 'namespace/name' with letters, digits, '-', '_' and '.' only, "
                          "e.g. me/bert-imdb.") from None
    return repo_id
