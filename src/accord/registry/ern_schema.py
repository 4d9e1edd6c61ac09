"""Untrusted ERN XML in, a validated element tree out: the first stage of an ERN import.

A message is parsed with ``defusedxml`` (no DTD, no entity: no expansion, nothing external
fetched), within a size and a nesting limit, and validated against ``ern43-subset.xsd``, the
XSD 1.1 schema of the subset of DDEX ERN 4.3 that Accord reads, shipped in this package
(the official DDEX schema is not, and nothing is downloaded at run time). See ``docs/ern.md``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cache
from importlib import resources

import defusedxml.ElementTree as SafeET
import xmlschema
from defusedxml import DefusedXmlException

from accord.errors import ValidationError

ERN_NAMESPACE = "http://ddex.net/xml/ern/43"
"""The namespace of the root element of an ERN 4.3 message (its children are unqualified)."""

MAX_ERN_BYTES = 64 * 1024 * 1024
"""The largest ERN message read (64 MiB; the largest public sample is 330 kB)."""
MAX_ERN_DEPTH = 64
"""The deepest element nesting accepted (ERN 4.3 nests about 12 levels)."""
SCHEMA_FILE = "ern43-subset.xsd"
"""The XSD 1.1 schema every message is validated against before it is read (docs/ern.md)."""


@cache
def ern_schema() -> xmlschema.XMLSchema11:
    """The ERN 4.3 subset schema shipped in this package (no network: it imports nothing)."""
    source = resources.files("accord.registry").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return xmlschema.XMLSchema11(source, base_url=None, allow="none")


def _check_depth(root: ET.Element, name: str) -> None:
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_ERN_DEPTH:
            msg = f"{name}: elements nested deeper than {MAX_ERN_DEPTH} levels (at <{node.tag}>); expected ERN 4.3"
            raise ValidationError(msg, field="xml", value=depth)
        stack.extend((child, depth + 1) for child in node)


def validate_ern(root: ET.Element, name: str = "<ern>") -> None:
    """Validate a parsed message against the shipped ERN 4.3 subset schema.

    Raises:
        ValidationError: the first schema violation, naming the element path and what is wrong.
    """
    error = next(iter(ern_schema().iter_errors(root, use_location_hints=False)), None)
    if error is not None:
        path = (error.path or "/").replace(f"{{{ERN_NAMESPACE}}}", "ern:")
        reason = " ".join(str(error.reason or error.message).split()).rstrip(".")
        msg = f"{name}: {path}: {reason}; expected a valid ERN 4.3 NewReleaseMessage (docs/ern.md)"
        raise ValidationError(msg, field=path.rsplit("/", 1)[-1] or "xml", value=path)


def load_ern_xml(data: bytes, name: str = "<ern>") -> ET.Element:
    """The root of an ERN 4.3 NewReleaseMessage, checked as untrusted XML and against the schema.

    Raises:
        ValidationError: larger than :data:`MAX_ERN_BYTES`, not well-formed, a DTD or entity
            declaration (wherever it stands), nested deeper than :data:`MAX_ERN_DEPTH`, a root
            other than ERN 4.3's NewReleaseMessage, or a schema violation (with its element path).
    """
    if len(data) > MAX_ERN_BYTES:
        msg = f"{name}: {len(data):,} bytes; expected an ERN message of at most {MAX_ERN_BYTES:,} bytes"
        raise ValidationError(msg, field="xml", value=len(data))
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        msg = f"{name}: has a DTD or entity declaration ({type(exc).__name__}); ERN messages have none"
        raise ValidationError(msg, field="xml") from None
    except ET.ParseError as exc:
        raise ValidationError(f"{name}: not well-formed XML ({exc})", field="xml") from None
    want = f"{{{ERN_NAMESPACE}}}NewReleaseMessage"
    if root.tag != want:
        raise ValidationError(f"{name}: root element {root.tag!r}; expected {want}", field="root", value=root.tag)
    _check_depth(root, name)
    validate_ern(root, name)
    return root
