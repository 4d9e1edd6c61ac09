"""The content-addressed media store: files named by their sha256 under ``ACCORD_HOME/media``."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from accord.errors import AccordError, NotFound


class TamperedMedia(AccordError):
    """A stored file whose bytes no longer match the hash it is filed under."""

    code = "tampered_media"


CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class MediaStore:
    """Files stored once, by content; a name is the sha256 of the bytes.

    Attributes:
        root: the store's folder (``<root>/ab/cd/abcd…``).
    """

    root: Path

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def open_path(self, sha256: str) -> Path:
        """The stored file's path, or :class:`NotFound`."""
        path = self.path_for(sha256)
        if not path.is_file():
            msg = f"media {sha256}: not in the media store; expected a stored file with this sha256"
            raise NotFound(msg)
        return path

    def put(self, source: Path, sha256: str) -> bool:
        """Copy ``source`` in under its (already verified) hash; ``True`` if it was new.

        The copy goes to a temporary file first and is renamed into place, so a crash
        never leaves a partial file under a content name.
        """
        dest = self.path_for(sha256)
        if dest.is_file():
            return False
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                shutil.copyfileobj(src, out, CHUNK)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def put_bytes(self, data: bytes) -> str:
        """Store bytes under their sha256 (atomically); returns the hash."""
        sha = hashlib.sha256(data).hexdigest()
        dest = self.path_for(sha)
        if dest.is_file():
            return sha
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return sha

    def read_verified(self, sha256: str) -> bytes:
        """The stored bytes, checked against their name; a mismatch is an error, never silent."""
        data = self.open_path(sha256).read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            msg = f"media {sha256}: stored file has sha256 {actual}; the store was tampered with"
            raise TamperedMedia(msg)
        return data

    def remove(self, sha256: str) -> None:
        """Remove a file this process just added (used to undo a failed import)."""
        self.path_for(sha256).unlink(missing_ok=True)
