"""Telling a local path from a Hugging Face Hub id (``owner/name``) by its spelling alone."""

from __future__ import annotations


def looks_like_local_path(name: str) -> bool:
    """True for ``./x``, ``/x``, ``~/x``, ``a/b/c`` or a Windows path: never a Hub id, even when no such
    file exists (then the error should say "no such folder", not ask for a valid repo id)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
