"""Stage split: assign every track to train/valid/test (per track, artist-grouped, stratified)."""
from genrelab.config import from_mapping
from genrelab.datasets import read_index
from genrelab.io import write_text
from genrelab.splits import SplitSettings, make_split
from genrelab.stage import run_stage


def configure(p):
    p.add_argument("--dataset", required=True, help="output of the prepare stage")
    p.add_argument("--out", required=True, help="split table (CSV)")


def main(args, params):
    settings = from_mapping(SplitSettings, params["split"], section="split")
    table = make_split(read_index(args.dataset), settings, seed=int(params["seed"]))
    write_text(args.out, table.to_csv(index=False))
    print(table.groupby("split").size().to_string())


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
