"""Photos of cases (a reporter's, or a department's proof of work), kept under the var folder.

A photo is accepted only if its bytes are a JPEG, PNG or WebP image (the declared type is not
trusted) and it is at most ``MAX_BYTES``; it is saved under ``<var>/media/cases/`` with a random
name, and the case refers to it by the path relative to the var folder.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from helpline.cases.workflow import InvalidInput

MAX_BYTES = 5 * 1024 * 1024
FOLDER = "media/cases"
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def sniff(data: bytes) -> str | None:
    """The image kind from the file's first bytes."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def save_photo(var_dir: Path, data: bytes) -> str:
    """Save one photo; returns its path relative to ``var_dir`` (``media/cases/…``)."""
    if not data:
        raise InvalidInput("the photo is empty")
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"the photo is too large: {len(data)} bytes, at most {MAX_BYTES}")
    kind = sniff(data)
    if kind is None:
        raise InvalidInput("the photo must be a JPEG, PNG or WebP image")
    folder = var_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(12)}.{kind}"
    tmp = folder / f".{name}.part"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(folder / name)
    return f"{FOLDER}/{name}"


def resolve(var_dir: Path, relative: str) -> Path | None:
    """The file behind a stored media path, if it lies inside ``<var>/media`` and exists."""
    root = (var_dir / "media").resolve()
    path = (var_dir / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path
