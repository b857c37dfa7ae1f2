"""Stage params: params.yaml is valid and composed from the conf/ on disk.

Every stage checks this before it works (genrelab.stage.run_stage); this stage depends on conf/,
so that `dvc repro` after an edit of conf/ fails with the fix even when no other stage would run.
"""
from genrelab.stage import run_stage


def configure(p):
    pass


def main(args, params):
    print(f"{args.params}: every section valid, composed from {args.conf}/ (conf_digest {params['conf_digest']})")


if __name__ == "__main__":
    run_stage(main, __doc__, configure)
