"""Stage evaluate: slice- and track-level metrics on the test split, predictions, confusion plots."""
from genrelab.config import from_mapping
from genrelab.evaluate import (
    EvaluateSettings,
    confusion_png,
    confusion_title,
    evaluate_bundle,
    per_genre_table,
)
from genrelab.io import write_text
from genrelab.metrics import write_metrics
from genrelab.models import load_bundle
from genrelab.models.card import evaluation_summary, write_card
from genrelab.splits import SplitSettings
from genrelab.stage import run_stage


def configure(p):
    p.add_argument("--features", required=True, help="output of the features stage")
    p.add_argument("--split", required=True, help="split table of the split stage (groups, folds)")
    p.add_argument("--model", required=True, help="model bundle of the train stage")
    p.add_argument("--metrics", required=True, help="headline metrics (JSON): accuracy, macro-F1, intervals")
    p.add_argument("--details", required=True, help="every score: levels, per genre, per seed (JSON)")
    p.add_argument("--per-genre", required=True, help="per-genre scores = plot data (CSV)")
    p.add_argument("--slices", required=True, help="slice-level predictions (CSV)")
    p.add_argument("--tracks", required=True, help="track-level predictions = confusion plot data (CSV)")
    p.add_argument("--png", required=True, help="confusion matrix image")
    p.add_argument("--card", required=True, help="model card: the bundle's training card plus these test metrics")


def main(args, params):
    bundle = load_bundle(args.model, trust=True)  # the train stage's output in this pipeline, named by dvc.yaml
    ev = from_mapping(EvaluateSettings, params["evaluate"], section="evaluate")
    fractions = from_mapping(SplitSettings, params["split"], section="split").fractions
    metrics, slices, tracks = evaluate_bundle(bundle, args.features, split=ev.split, split_table=args.split,
                                              fractions=fractions, seed=int(params["seed"]))
    write_metrics(args.metrics, args.details, metrics, "eval")
    write_card(args.card, args.model, evaluation_summary(metrics, split=ev.split))
    write_text(args.per_genre, per_genre_table(metrics, tracks).to_csv(index=False))
    write_text(args.slices, slices.to_csv(index=False))
    write_text(args.tracks, tracks.to_csv(index=False))
    confusion_png(tracks["actual"], tracks["predicted"], bundle.labels, args.png,
                  title=confusion_title(bundle.meta, metrics, split=ev.split))


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
