"""Stage prepare: build the dataset (generate, or ingest a local copy/download) and its index."""
from genrelab.datasets import prepare_dataset
from genrelab.io import write_json
from genrelab.stage import run_stage


def configure(p):
    p.add_argument("--out", required=True, help="dataset folder (index.csv, audio, stems)")
    p.add_argument("--metrics", required=True, help="dataset summary metrics (JSON)")


def main(args, params):
    index = prepare_dataset(params["dataset"], args.out)
    write_json(args.metrics, {"n_tracks": len(index), "n_genres": int(index["genre"].nunique()),
                              "n_artists": int(index.loc[index["artist"].astype(str) != "", "artist"].nunique()),
                              "hours": round(float(index["duration_s"].sum()) / 3600, 4)})


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
