"""Stage features: slice every track of the variant and extract features (one set, whatever the split)."""
from pathlib import Path

import pandas as pd

from genrelab.config import from_mapping
from genrelab.datasets import read_index
from genrelab.features import SliceSettings, extract_dataset, make_extractor
from genrelab.io import AudioSettings
from genrelab.metrics import write_metrics
from genrelab.stage import run_stage
from genrelab.store import open_store
from genrelab.variants import VariantSettings


def configure(p):
    p.add_argument("--dataset", required=True, help="output of the prepare stage")
    p.add_argument("--separated", required=True, help="manifest of the separate stage")
    p.add_argument("--out", required=True, help="feature folder")
    p.add_argument("--metrics", required=True, help="headline metrics (JSON): tracks with features")
    p.add_argument("--details", required=True, help="track and slice counts, computed and reused tracks (JSON)")


def main(args, params):
    summary = extract_dataset(
        read_index(args.dataset),
        extractor=make_extractor(params["features"], models_dir=params["models"]["dir"]),
        variant=from_mapping(VariantSettings, params["variant"], section="variant"),
        slicing=from_mapping(SliceSettings, params["slicing"], section="slicing"),
        sample_rate=from_mapping(AudioSettings, params["audio"], section="audio").sample_rate,
        dataset_dir=Path(args.dataset), out_dir=Path(args.out), store=open_store(params.get("store")),
        separation=params["separation"], separated=pd.read_csv(args.separated, dtype=str, keep_default_na=False))
    write_metrics(args.metrics, args.details, summary, "features")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
