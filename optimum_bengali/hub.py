"""Publishing a compressed model folder to the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from .errors import ModelError


def push_to_hub(folder: Union[str, Path], repo_id: str, private: bool = False, token: Optional[str] = None,
                commit_message: str = "Upload model compressed with optimum-bengali") -> str:
    """Create ``repo_id`` if needed and upload ``folder`` (a thin wrapper on ``upload_folder``)."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder} is not a model folder (no config.json); give an apply_recipe output")
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message,
                             repo_type="model")
    return str(getattr(info, "commit_url", info))
