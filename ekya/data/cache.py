"""On-disk cache of numpy arrays keyed by the parameters that produced them; digests to build keys from.

Entries are ``.npz`` files named by a hash of a JSON-able key. Writes go to a temporary
file in the same folder and are renamed into place, so a crash mid-write never leaves a
corrupt entry; a corrupt entry found on read (e.g. from an older tool) is deleted and
recomputed. :func:`cache_key`, :func:`file_digest` and :func:`windows_digest` make keys that
change when the parameters, a file or a list of windows' crops do.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ekya.data.base import Window


def cache_key(params: Any) -> str:
    """A stable hex digest of JSON-able ``params`` (dict keys sorted)."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def file_digest(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's content, for keys that must change when the file does."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def windows_digest(windows: list[Window]) -> str:
    """SHA-256 hex digest of the crops, labels and crop sizes of ``windows``, in order."""
    digest = hashlib.sha256()
    for window in windows:
        digest.update(repr((window.images.shape, str(window.images.dtype))).encode())
        digest.update(window.images.tobytes())
        digest.update(window.labels.astype("<i8").tobytes())
    return digest.hexdigest()


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


class ArrayCache:
    """A folder of ``.npz`` entries.

    Args:
        root: cache folder (created on first write).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``, or None when absent or unreadable (then removed)."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            path.unlink(missing_ok=True)
            return None

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Store ``arrays`` under ``key`` atomically (temp file + rename)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays)
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_or_create(self, key: str, create: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Load ``key``, or call ``create()``, store its result and return it."""
        found = self.load(key)
        if found is not None:
            return found
        arrays = create()
        self.save(key, arrays)
        return arrays
