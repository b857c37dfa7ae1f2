"""Stage train: fit the configured model (one per seed) on the train split; save a bundle."""
from genrelab.io import write_json
from genrelab.models import train_bundle
from genrelab.stage import run_stage


def configure(p):
    p.add_argument("--features", required=True, help="output of the features stage")
    p.add_argument("--split", required=True, help="split table of the split stage (groups, folds)")
    p.add_argument("--out", required=True, help="model bundle folder")
    p.add_argument("--metrics", required=True, help="training figures (JSON)")


def main(args, params):
    write_json(args.metrics, train_bundle(params, args.features, args.out, split_table=args.split))


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
