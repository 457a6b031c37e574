"""Offline environment for litellm and tiktoken, importable without pydantic.

`agentsprint --help` must start fast; config.py imports pydantic (~80 ms here), so the function the
CLI entry point calls first lives in this stdlib-only module and config re-exports it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def offline_env() -> None:
    """Point tiktoken at litellm's bundled encodings and keep litellm's price map local.

    Called once by composition roots (CLI entry, test conftest) before litellm or tiktoken is used.
    Uses importlib.util so litellm itself is not imported here.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return
    spec = importlib.util.find_spec("litellm")
    if spec and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
        if folder.is_dir():
            os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)
