"""A DDEX ERN 4.3 NewReleaseMessage read into frozen records: header, parties, sound recordings,
releases and deals (:func:`parse_ern`, :func:`read_ern`), once :mod:`accord.registry.ern_schema`
has checked it as untrusted XML and against the ERN 4.3 subset schema. Turning it into an Accord
delivery is :mod:`accord.registry.ern`'s work.
"""

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from accord.errors import ValidationError
from accord.registry.ern_schema import load_ern_xml

if TYPE_CHECKING:
    pass


WRITER_ROLES = frozenset({"Composer", "Lyricist", "ComposerLyricist", "Writer", "Author", "Librettist", "Arranger"})
"""ERN contributor roles that make a party a writer in Accord."""

_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?T?(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?$")
PARTY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass(frozen=True)
class ErnParty:
    """A party of the PartyList.

    Attributes:
        reference: the message-local ``PartyReference``.
        ids: ``(kind, value)`` pairs: ``("DPID", …)``, ``("ISNI", …)``, ``("IPI", …)`` or
            ``("Proprietary:<namespace>", …)``.
    """

    reference: str
    name: str
    ids: tuple[tuple[str, str], ...]

    def id_of(self, kind: str) -> str:
        """The first id of a kind, ``""`` if none."""
        return next((value for k, value in self.ids if k == kind), "")


@dataclass(frozen=True)
class ErnFile:
    """A delivered file of a resource: its URI and, when given, its hash."""

    uri: str
    hash_algorithm: str
    hash_value: str


@dataclass(frozen=True)
class ErnSoundRecording:
    """A SoundRecording of the ResourceList.

    Attributes:
        isrc: ``""`` when the recording has only proprietary ids.
        contributors: ``(party reference, role)`` pairs (role ``""`` when not given).
        duration_ms: the ISO 8601 ``Duration`` in milliseconds, ``None`` when absent.
    """

    reference: str
    isrc: str
    proprietary_ids: tuple[tuple[str, str], ...]
    title: str
    display_artist_name: str
    artist_references: tuple[str, ...]
    contributors: tuple[tuple[str, str], ...]
    duration_ms: int | None
    p_line: str
    files: tuple[ErnFile, ...]


@dataclass(frozen=True)
class ErnRelease:
    """A Release of the ReleaseList (GRid / ICPN, title, labels, genre, the resources it contains)."""

    reference: str
    grid: str
    icpn: str
    title: str
    label_references: tuple[str, ...]
    genre: str
    resource_references: tuple[str, ...]


@dataclass(frozen=True)
class ErnDeal:
    """One Deal of a ReleaseDeal: territories, commercial models, use types and validity."""

    release_reference: str
    territories: tuple[str, ...]
    excluded_territories: tuple[str, ...]
    commercial_models: tuple[str, ...]
    use_types: tuple[str, ...]
    start: str
    end: str


@dataclass(frozen=True)
class ErnMessage:
    """An ERN 4.3 NewReleaseMessage, as far as Accord reads it.

    Attributes:
        other_resources: ``(element, reference)`` of resources that are not sound recordings
            (videos, images, texts), which Accord does not import.
    """

    message_id: str
    thread_id: str
    profile: str
    created: str
    sender_dpid: str
    sender_name: str
    recipient_dpid: str
    recipient_name: str
    parties: tuple[ErnParty, ...]
    sound_recordings: tuple[ErnSoundRecording, ...]
    other_resources: tuple[tuple[str, str], ...]
    releases: tuple[ErnRelease, ...]
    deals: tuple[ErnDeal, ...]


def _text(node: ET.Element | None, path: str) -> str:
    if node is None:
        return ""
    return (node.findtext(path) or "").strip()


def _all(node: ET.Element, path: str) -> tuple[str, ...]:
    return tuple((e.text or "").strip() for e in node.findall(path) if (e.text or "").strip())


def _default(node: ET.Element, path: str, leaf: str = "") -> str:
    """The ``IsDefault="true"`` occurrence of a repeated element, else the first."""
    found = node.findall(path)
    chosen = next((e for e in found if e.get("IsDefault") == "true"), found[0] if found else None)
    if chosen is None:
        return ""
    return _text(chosen, leaf) if leaf else (chosen.text or "").strip()


def duration_ms(text: str, *, field: str = "Duration") -> int:
    """ISO 8601 duration (``PT4M23.583S``, ``P0DT1H2M3S``) to whole milliseconds (half up)."""
    m = _DURATION.match(text.strip())
    if not m or not any(m.groupdict().values()):
        raise ValidationError(f"{field}: {text!r} is not an ISO 8601 duration like PT3M21S", field=field, value=text)
    seconds = Decimal(m["s"] or 0) + 60 * (int(m["m"] or 0) + 60 * (int(m["h"] or 0) + 24 * int(m["d"] or 0)))
    return int((seconds * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _ids(node: ET.Element | None) -> tuple[tuple[str, str], ...]:
    if node is None:
        return ()
    out: list[tuple[str, str]] = []
    for child in node:
        value = (child.text or "").strip()
        if not value:
            continue
        if child.tag == "ProprietaryId":
            out.append((f"Proprietary:{child.get('Namespace', '')}", value))
        elif child.tag in ("DPID", "ISNI", "ISRC", "GRid", "ICPN"):
            out.append((child.tag, value))
        elif child.tag in ("IpiNameNumber", "IPI"):
            out.append(("IPI", value))
    return tuple(out)


def _party(node: ET.Element) -> ErnParty:
    ids: list[tuple[str, str]] = []
    for pid in node.findall("PartyId"):
        if len(pid) == 0 and (pid.text or "").strip():  # a bare <PartyId> is a DPID
            ids.append(("DPID", (pid.text or "").strip()))
        ids.extend(_ids(pid))
    return ErnParty(_text(node, "PartyReference"), _default(node, "PartyName", "FullName"), tuple(ids))


def _recording(node: ET.Element) -> ErnSoundRecording:
    edition = node.find("SoundRecordingEdition")
    ids = _ids(edition.find("ResourceId") if edition is not None else None)
    files = tuple(
        ErnFile(_text(f, "URI"), _text(f, "HashSum/Algorithm"), _text(f, "HashSum/HashSumValue"))
        for f in node.iterfind("SoundRecordingEdition/TechnicalDetails/DeliveryFile/File")
    )
    duration = _text(node, "Duration")
    title = _default(node, "DisplayTitle", "TitleText") or _text(node, "DisplayTitleText")
    return ErnSoundRecording(
        reference=_text(node, "ResourceReference"),
        isrc=next((v for k, v in ids if k == "ISRC"), ""),
        proprietary_ids=tuple((k, v) for k, v in ids if k.startswith("Proprietary:")),
        title=title,
        display_artist_name=_default(node, "DisplayArtistName"),
        artist_references=_all(node, "DisplayArtist/ArtistPartyReference"),
        contributors=tuple(
            (_text(c, "ContributorPartyReference"), _text(c, "Role")) for c in node.findall("Contributor")
        ),
        duration_ms=duration_ms(duration, field=f"{_text(node, 'ResourceReference')}.Duration") if duration else None,
        p_line=_text(edition, "PLine/PLineText"),
        files=files,
    )


def _release(node: ET.Element) -> ErnRelease:
    ids = dict(_ids(node.find("ReleaseId")))
    return ErnRelease(
        reference=_text(node, "ReleaseReference"),
        grid=ids.get("GRid", ""),
        icpn=ids.get("ICPN", ""),
        title=_default(node, "DisplayTitle", "TitleText") or _text(node, "DisplayTitleText"),
        label_references=_all(node, "ReleaseLabelReference"),
        genre=_default(node, "Genre", "GenreText"),
        resource_references=_all(node, ".//ReleaseResourceReference"),
    )


def parse_ern(data: bytes, name: str = "<ern>") -> ErnMessage:
    """Parse an ERN 4.3 NewReleaseMessage: checked as untrusted XML and against the ERN 4.3 subset
    schema first (:func:`accord.registry.ern_schema.load_ern_xml`), then read into records.

    Raises:
        ValidationError: too large, not XML, a DTD or entity declaration, nested too deep, not an
            ERN 4.3 NewReleaseMessage, a schema violation (with its element path), or a duration
            that is not ISO 8601.
    """
    root = load_ern_xml(data, name)
    header = root.find("MessageHeader")
    resources = root.find("ResourceList")
    deals = [
        ErnDeal(
            release_reference=_text(rd, "DealReleaseReference"),
            territories=_all(deal, "DealTerms/TerritoryCode"),
            excluded_territories=_all(deal, "DealTerms/ExcludedTerritoryCode"),
            commercial_models=_all(deal, "DealTerms/CommercialModelType"),
            use_types=_all(deal, "DealTerms/UseType"),
            start=_text(deal, "DealTerms/ValidityPeriod/StartDate")
            or _text(deal, "DealTerms/ValidityPeriod/StartDateTime"),
            end=_text(deal, "DealTerms/ValidityPeriod/EndDate") or _text(deal, "DealTerms/ValidityPeriod/EndDateTime"),
        )
        for rd in root.iterfind("DealList/ReleaseDeal")
        for deal in rd.findall("Deal")
    ]
    children = list(resources) if resources is not None else []
    return ErnMessage(
        message_id=_text(header, "MessageId"),
        thread_id=_text(header, "MessageThreadId"),
        profile=root.get("ReleaseProfileVersionId", ""),
        created=_text(header, "MessageCreatedDateTime"),
        sender_dpid=_text(header, "MessageSender/PartyId"),
        sender_name=_text(header, "MessageSender/PartyName/FullName"),
        recipient_dpid=_text(header, "MessageRecipient/PartyId"),
        recipient_name=_text(header, "MessageRecipient/PartyName/FullName"),
        parties=tuple(_party(p) for p in root.iterfind("PartyList/Party")),
        sound_recordings=tuple(_recording(r) for r in children if r.tag == "SoundRecording"),
        other_resources=tuple((r.tag, _text(r, "ResourceReference")) for r in children if r.tag != "SoundRecording"),
        releases=tuple(_release(r) for r in root.iterfind("ReleaseList/Release")),
        deals=tuple(deals),
    )


def read_ern(path: Path | str) -> ErnMessage:
    """Read an ERN 4.3 message file; see :func:`parse_ern`."""
    path = Path(path)
    return parse_ern(path.read_bytes(), path.name)
