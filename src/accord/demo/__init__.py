"""The demo catalog: a delivery folder built from public-domain scores in music21.

``build_demo_delivery(dest, cache_dir=...)`` writes ``catalog.json`` + ``media/*.mid``
(Accord delivery 1.0, see ``docs/delivery-format.md``): Bach chorales and Irish and
Scottish tunes from three 18th/19th-century tune books, with a fictional rights picture
in which every licensing situation appears. Nothing is downloaded; the output is
deterministic, and a cache makes a second build take seconds.
"""

from accord.demo.catalog import (
    BUILDER_VERSION,
    CollectionReport,
    DemoBuildReport,
    ProgressCallback,
    build_demo_delivery,
)

__all__ = [
    "BUILDER_VERSION",
    "CollectionReport",
    "DemoBuildReport",
    "ProgressCallback",
    "build_demo_delivery",
]
