"""Files that hold keys or personal data: 0600, in directories of mode 0700.

``private_process`` sets the umask of a ``silian`` process so that whatever it
writes (the SQLite file and its journal, exports, reports, keys) is readable
by its owner only; ``write_private`` and ``private_dir`` say so explicitly for
the files and folders the gateway makes itself.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_process() -> None:
    """Files and folders this process creates from now on are its owner's only."""
    os.umask(0o077)


def private_dir(path: Path) -> Path:
    """Make ``path`` (and missing parents) and set it to 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    path.chmod(DIR_MODE)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600, never readable by others, even
    for a moment), replacing it atomically; missing parent folders are 0700."""
    if not path.parent.exists():
        private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def create_private(path: Path) -> Path:
    """Make sure ``path`` exists as a 0600 file (kept if it exists), so a file
    opened on it afterwards is never readable by others, whatever the umask."""
    path.touch(mode=FILE_MODE)
    path.chmod(FILE_MODE)
    return path


def restrict(path: Path) -> None:
    """Set an existing file to 0600 (one made before this version, or by a library)."""
    if path.exists():
        path.chmod(FILE_MODE)
