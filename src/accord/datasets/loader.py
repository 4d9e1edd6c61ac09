"""The only way training reads media: through a manifest, every file checked against its hash.

:meth:`ManifestLoader.verify` checks every file before the first training step, so a
tampered or missing file stops training before anything is learned; iteration checks
each file again as it is read. A recording that is not in the manifest cannot be read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from accord.datasets.manifest import Manifest, ManifestItem
from accord.errors import NotLicensed
from accord.registry.media import MediaStore, TamperedMedia


@dataclass(frozen=True)
class TrainingFile:
    """One training example as read.

    Attributes:
        item: the manifest item it belongs to.
        data: the file's bytes (hash checked).
    """

    item: ManifestItem
    data: bytes


class ManifestLoader:
    """Reads exactly the files a manifest lists, and nothing else."""

    def __init__(self, manifest: Manifest, media: MediaStore) -> None:
        self.manifest = manifest
        self.media = media

    def __len__(self) -> int:
        return len(self.manifest.items)

    def _read(self, item: ManifestItem) -> bytes:
        path = self.media.path_for(item.media_sha256)
        if not path.is_file():
            msg = f"{item.isrc}: media {item.media_sha256} listed in manifest {self.manifest.root[:12]} is missing"
            raise TamperedMedia(msg)
        data = path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != item.media_sha256:
            msg = (
                f"{item.isrc}: media file hash is {actual}, the manifest {self.manifest.root[:12]} "
                f"lists {item.media_sha256}; refusing to train on it"
            )
            raise TamperedMedia(msg)
        return data

    def verify(self) -> None:
        """Check every file; raise once, naming every bad file, before anything is trained."""
        problems = []
        for item in self.manifest.items:
            try:
                self._read(item)
            except TamperedMedia as exc:
                problems.append(str(exc))
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            msg = f"{len(problems)} file(s) fail their manifest hash; nothing was trained: " + "; ".join(problems[:5])
            raise TamperedMedia(msg + more)

    def __iter__(self) -> Iterator[TrainingFile]:
        for item in self.manifest.items:
            yield TrainingFile(item, self._read(item))

    def read(self, isrc: str) -> TrainingFile:
        """One recording's file; refused if the manifest does not list it."""
        index = self.manifest.index_of(isrc)
        if index is None:
            msg = f"{isrc}: not in manifest {self.manifest.root[:12]}; training may read only what a manifest lists"
            raise NotLicensed(msg)
        item = self.manifest.items[index]
        return TrainingFile(item, self._read(item))
