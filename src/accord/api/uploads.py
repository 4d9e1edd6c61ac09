"""Delivery uploads through the API: a zip or tar archive unpacked safely, then imported all or nothing.

The limits below are checked before anything is written (a zip bomb is refused by its stated sizes);
what the archive holds is then imported by the same importer as ``accord catalog import``
(:func:`accord.registry.importer.import_delivery`), with the caller's standing.
"""

from __future__ import annotations

import io
import lzma
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from accord.api.auth import Principal, Role
from accord.api.services import actor, as_party, require
from accord.errors import Problem, Rejected, ValidationError
from accord.registry.importer import ImportReport, import_delivery
from accord.registry.store import Store

MAX_ARCHIVE_BYTES = 512 * 1024 * 1024  # unpacked; a delivery of the demo's size is ~20 MB
MAX_MEMBER_BYTES = 256 * 1024 * 1024  # one unpacked file: a long uncompressed WAV fits
MAX_ARCHIVE_MEMBERS = 20_000  # files and folders in one upload


def _check_members(filename: str, members: list[tuple[str, int]]) -> None:
    """Refuse an archive past the member-count or size limits, or with a member outside its folder."""
    if len(members) > MAX_ARCHIVE_MEMBERS:
        msg = f"archive: {filename!r} holds more than {MAX_ARCHIVE_MEMBERS:,} members; at most that many are accepted"
        raise ValidationError(msg, field="archive", value=filename)
    _safe_members(name for name, _ in members)
    for name, size in members:
        if size > MAX_MEMBER_BYTES:
            msg = f"archive: member {name!r} unpacks to {size:,} bytes; at most {MAX_MEMBER_BYTES:,} per file"
            raise ValidationError(msg, field="archive", value=name)
    if sum(size for _, size in members) > MAX_ARCHIVE_BYTES:
        msg = f"archive: {filename!r} unpacks to more than {MAX_ARCHIVE_BYTES:,} bytes"
        raise ValidationError(msg, field="archive", value=filename)


def _safe_members(names: Iterable[str]) -> None:
    for name in names:
        p = PurePosixPath(name)
        if p.is_absolute() or ".." in p.parts:
            msg = f"archive: member {name!r} points outside the delivery folder"
            raise ValidationError(msg, field="archive", value=name)


def unpack_archive(data: bytes, filename: str, dest: Path) -> Path:
    """Unpack a zip or tar(.gz/.bz2/.xz) delivery into ``dest``; the folder holding its catalog.

    Zip-bomb safe: the member count, each member's size and the total unpacked size are checked
    before anything is written (a zip member's stated size is also the most ``zipfile`` will
    write). A truncated or corrupt archive is a :class:`ValidationError` (HTTP 400), never a 500.
    """
    if len(data) > MAX_ARCHIVE_BYTES:
        msg = f"archive: {filename!r} is {len(data)} bytes; at most {MAX_ARCHIVE_BYTES} are accepted"
        raise ValidationError(msg, field="archive", value=filename)
    try:
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                infos = zf.infolist()
                _check_members(filename, [(i.filename, i.file_size) for i in infos])
                zf.extractall(dest)
        else:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
                members: list[tarfile.TarInfo] = []
                while (member := tf.next()) is not None:  # counted as read: no list of a million members
                    members.append(member)
                    if len(members) > MAX_ARCHIVE_MEMBERS:
                        break
                _check_members(filename, [(m.name, m.size) for m in members])
                tf.extractall(dest, members=members, filter="data")  # no links out, no devices, no absolute paths
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, NotImplementedError) as exc:
        msg = f"archive: {filename!r} is not a readable zip or tar(.gz) archive (truncated or corrupt: {exc})"
        raise ValidationError(msg, field="archive", value=filename) from None
    except (OSError, RuntimeError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:  # the disk, not the upload
            raise
        msg = f"archive: {filename!r} cannot be unpacked ({exc}); expected an unencrypted zip or tar(.gz)"
        raise ValidationError(msg, field="archive", value=filename) from None
    markers = ("catalog.json", "recordings.csv", "delivery.csv")
    found = sorted({p.parent for m in markers for p in dest.rglob(m) if len(p.relative_to(dest).parts) <= 3})
    if not found:
        problem = Problem(
            "", "", "archive", filename, "a delivery folder holding catalog.json or CSV files", "not_found"
        )
        raise Rejected(f"delivery {filename}", [problem])
    return found[0]  # the shallowest (sorted paths: a parent sorts before its children)


def import_archive(store: Store, principal: Principal, filename: str, data: bytes) -> ImportReport:
    """Import an uploaded delivery archive, all or nothing; a rights holder delivers only as itself,
    and only records it has standing for."""
    require(principal, Role.RIGHTS_HOLDER, Role.OPERATOR)
    tmp = Path(tempfile.mkdtemp(prefix="accord-upload-"))
    try:
        folder = unpack_archive(data, filename, tmp)
        return import_delivery(store, folder, actor=actor(principal), as_party=as_party(principal))
    except Rejected as exc:  # named by the upload, never by the server's temporary folder
        raise Rejected(f"delivery {filename}", exc.problems) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
