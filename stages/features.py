"""Stage features: slice each track of the variant and extract features, one set per split."""
from pathlib import Path

import pandas as pd

from genrelab.config import from_mapping
from genrelab.datasets import read_index
from genrelab.features import SliceSettings, extract_dataset, make_extractor
from genrelab.io import AudioSettings
from genrelab.metrics import write_metrics
from genrelab.splits import SplitSettings
from genrelab.stage import run_stage
from genrelab.variants import VariantSettings


def configure(p):
    p.add_argument("--dataset", required=True, help="output of the prepare stage")
    p.add_argument("--split", required=True, help="split table of the split stage")
    p.add_argument("--separated", required=True, help="output of the separate stage")
    p.add_argument("--out", required=True, help="feature folder")
    p.add_argument("--metrics", required=True, help="headline metrics (JSON): tracks with features")
    p.add_argument("--details", required=True, help="track and slice counts per split (JSON)")


def main(args, params):
    summary = extract_dataset(
        read_index(args.dataset), pd.read_csv(args.split, dtype=str, keep_default_na=False),
        extractor=make_extractor(params["features"], models_dir=params["models"]["dir"]),
        variant=from_mapping(VariantSettings, params["variant"], section="variant"),
        slicing=from_mapping(SliceSettings, params["slicing"], section="slicing"),
        sample_rate=from_mapping(AudioSettings, params["audio"], section="audio").sample_rate,
        dataset_dir=Path(args.dataset), separated_dir=Path(args.separated), out_dir=Path(args.out),
        separation=params["separation"],
        leaky_fractions=from_mapping(SplitSettings, params["split"], section="split").fractions,
        seed=int(params["seed"]))
    write_metrics(args.metrics, args.details, summary, "features")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
