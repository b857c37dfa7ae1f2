"""Stage prepare: build the dataset (generate, or ingest a local copy/download) and its index."""
import logging

from genrelab.datasets import prepare_dataset
from genrelab.metrics import write_metrics
from genrelab.stage import run_stage


def configure(p):
    p.add_argument("--out", required=True, help="dataset folder (index.csv, audio, stems)")
    p.add_argument("--metrics", required=True, help="headline metrics (JSON): number of tracks")
    p.add_argument("--details", required=True, help="every count of the dataset (JSON)")


def main(args, params):
    index = prepare_dataset(params["dataset"], args.out)
    full = {"n_tracks": len(index), "n_genres": int(index["genre"].nunique()),
            "n_artists": int(index.loc[index["artist"].astype(str) != "", "artist"].nunique()),
            "hours": round(float(index["duration_s"].sum()) / 3600, 4)}
    write_metrics(args.metrics, args.details, full, "dataset")
    logging.getLogger("prepare").info("%d tracks, %d genres, %d artists, %.2f hours", full["n_tracks"],
                                      full["n_genres"], full["n_artists"], full["hours"])


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
