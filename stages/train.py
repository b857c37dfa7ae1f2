"""Stage train: fit the configured model (one per seed) on the train split; save a bundle."""
from genrelab.metrics import write_metrics
from genrelab.models import train_bundle
from genrelab.stage import run_stage


def configure(p):
    p.add_argument("--features", required=True, help="output of the features stage")
    p.add_argument("--split", required=True, help="split table of the split stage (groups, folds)")
    p.add_argument("--out", required=True, help="model bundle folder")
    p.add_argument("--metrics", required=True, help="headline metrics (JSON): training tracks")
    p.add_argument("--details", required=True, help="training set sizes and the models' own numbers (JSON)")


def main(args, params):
    write_metrics(args.metrics, args.details, train_bundle(params, args.features, args.out, split_table=args.split),
                  "train")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
