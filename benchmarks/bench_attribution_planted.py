"""The harder planted test (:mod:`accord.attribution.typical`): typical items at several strengths.

    python -m benchmarks.bench_attribution_planted [--state DIR] [--steps 200] [--json OUT]

Prints, per method and strength (copies of each planted item), precision@1, the recall of the
copies among the ``strength`` best, and the precision and recall of the items the credential
names; the baseline is a random ranking measured in the same run. The trained model is kept in
``--state`` (a second run only steers and scores).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", type=Path, default=None, help="folder for the planted set and model")
    parser.add_argument("--steps", type=int, default=200, help="training steps of the tiny model")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    import torch

    from accord.attribution.typical import run_typical
    from accord.settings import get_settings

    torch.set_num_threads(1)
    state = args.state or get_settings().cache_dir / "planted-typical"
    result = run_typical(state / f"steps-{args.steps}", steps=args.steps)
    setup = result["setup"]
    table = Table(
        title=f"Typical planted items: {setup['items']} items, {setup['outputs']} outputs primed with "
        f"{setup['prime_bars']} bar, tiny model, {setup['steps']} steps ({setup['seconds']} s)",
        title_justify="left",
    )
    for col in ("method", "strength", "precision@1", "recall@strength", "credit precision", "credit recall"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in result["rows"]:
        table.add_row(
            r["method"],
            str(r["strength"]),
            f"{r['precision_at_1']:.2f}",
            f"{r['recall_at_group']:.2f}",
            f"{r['credit_precision']:.2f}",
            f"{r['credit_recall']:.2f}",
        )
    Console(width=160).print(table)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
