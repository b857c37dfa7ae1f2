"""Stage split: assign every track to train/valid/test (per track, artist-grouped, stratified)."""
from genrelab.config import from_mapping
from genrelab.datasets import read_index
from genrelab.io import write_text
from genrelab.metrics import write_metrics
from genrelab.splits import SplitSettings, make_split, split_summary
from genrelab.stage import run_stage


def configure(p):
    p.add_argument("--dataset", required=True, help="output of the prepare stage")
    p.add_argument("--out", required=True, help="split table (CSV)")
    p.add_argument("--metrics", required=True, help="headline metrics (JSON): tracks in the split")
    p.add_argument("--details", required=True, help="what split was made: counts of tracks, groups, units (JSON)")


def main(args, params):
    settings = from_mapping(SplitSettings, params["split"], section="split")
    table = make_split(read_index(args.dataset), settings, seed=int(params["seed"]))
    write_text(args.out, table.to_csv(index=False))
    write_metrics(args.metrics, args.details, split_summary(table, settings), "split")
    print(table.groupby("split").size().to_string())


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
