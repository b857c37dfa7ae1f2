"""Stage source (always runs, reads no file): fingerprint the dataset's local source files.

``prepare`` depends on the fingerprint, so it re-runs when files under ``dataset.source`` change
(names, sizes, modification times) and not otherwise. The stage has no deps or params in
``dvc.yaml`` (it runs every time anyway; see the comment there).
"""
from genrelab.datasets.source import source_fingerprint
from genrelab.io import write_json
from genrelab.stage import run_stage


def configure(p):
    p.add_argument("--out", required=True, help="fingerprint of the dataset's source files (JSON)")


def main(args, params):
    write_json(args.out, source_fingerprint(params["dataset"]))


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
