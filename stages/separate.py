"""Stage separate: every track's stems for the variant's separator, kept in the per-track store."""
from pathlib import Path

from genrelab.config import from_mapping
from genrelab.datasets import read_index
from genrelab.io import AudioSettings, write_text
from genrelab.metrics import write_metrics
from genrelab.separation import separate_dataset
from genrelab.stage import run_stage
from genrelab.store import open_store
from genrelab.variants import VariantSettings


def configure(p):
    p.add_argument("--dataset", required=True, help="output of the prepare stage")
    p.add_argument("--out", required=True, help="manifest (CSV): each track's store key and status")
    p.add_argument("--metrics", required=True, help="headline metrics (JSON): tracks with stems")
    p.add_argument("--details", required=True, help="separation counts and quality (JSON)")


def main(args, params):
    separator = from_mapping(VariantSettings, params["variant"], section="variant").separator
    audio = from_mapping(AudioSettings, params["audio"], section="audio")
    manifest, summary = separate_dataset(
        read_index(args.dataset), separator=separator, settings=params["separation"].get(separator, {}),
        dataset_dir=Path(args.dataset), store=open_store(params.get("store")), sample_rate=audio.sample_rate)
    write_text(args.out, manifest.to_csv(index=False))
    write_metrics(args.metrics, args.details, summary, "separation")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
