"""How well a bundle's out-of-distribution warnings separate music from non-music recordings.

Runs ``genrelab predict`` on a folder of recordings listed in a ``MANIFEST.csv`` (``path``,
``is_music``, ``label``; the shared test recordings have one) and prints, per file, whether it
was flagged and why, then the confusion table: music / not music x flagged / not flagged /
refused (too short, unreadable ...).

    python benchmarks/ood_recordings.py --model data/model --audio ../shared/audio
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from genrelab.models import load_bundle
from genrelab.models.novelty import UNLIKE
from genrelab.predict import predict_paths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="data/model")
    p.add_argument("--audio", default="../shared/audio", help="folder with MANIFEST.csv")
    p.add_argument("--trust", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    root = Path(args.audio)
    manifest = pd.read_csv(root / "MANIFEST.csv")
    bundle = load_bundle(args.model, trust=args.trust)
    preds = {Path(x.path).resolve(): x for x in predict_paths(bundle, [root / f for f in manifest["path"]],
                                                               progress=False)}
    rows = []
    for r in manifest.itertuples():
        x = preds[(root / r.path).resolve()]
        kinds = ["novelty" if w.startswith(UNLIKE) else w.split(":")[0] for w in x.warnings]
        outcome = "refused" if not x.ok else "flagged" if x.warnings else "not flagged"
        rows.append({"path": r.path, "music": bool(r.is_music), "label": r.label, "outcome": outcome,
                     "why": x.error if not x.ok else ", ".join(kinds),
                     "novelty_ratio": (x.novelty or {}).get("ratio"), "genre": x.genre})
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60, "display.max_rows", None):
        print(table.to_string(index=False))
        print()
        print(pd.crosstab(table["music"].map({True: "music", False: "not music"}), table["outcome"], margins=True))


if __name__ == "__main__":
    main()
