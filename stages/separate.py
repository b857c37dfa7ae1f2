"""Stage separate: stems of every track for the variant's separator, computed once and resumed."""
from pathlib import Path

from genrelab.datasets import read_index
from genrelab.config import from_mapping
from genrelab.io import AudioSettings
from genrelab.metrics import write_metrics
from genrelab.separation import separate_dataset
from genrelab.stage import run_stage


def configure(p):
    p.add_argument("--dataset", required=True, help="output of the prepare stage")
    p.add_argument("--out", required=True, help="stems folder (persistent: <separator>-<settings hash>/)")
    p.add_argument("--metrics", required=True, help="headline metrics (JSON): tracks with stems")
    p.add_argument("--details", required=True, help="separation counts and quality (JSON)")


def main(args, params):
    separator = params["variant"]["separator"]
    audio = from_mapping(AudioSettings, params["audio"], section="audio")
    summary = separate_dataset(read_index(args.dataset), separator=separator,
                               settings=params["separation"].get(separator, {}), dataset_dir=Path(args.dataset),
                               separated_dir=Path(args.out), sample_rate=audio.sample_rate)
    write_metrics(args.metrics, args.details, summary, "separation")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
