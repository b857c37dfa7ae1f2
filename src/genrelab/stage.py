"""Shared plumbing of the thin ``stages/*.py`` scripts: arguments, params, checks, logging.

Before a stage does any work, :func:`run_stage` validates every section of ``params.yaml``
(:func:`genrelab.config.validate_params`, about a second) and checks that ``params.yaml`` was
composed from the ``conf/`` on disk (:func:`genrelab.config.check_params_current`; not under
``dvc exp run``, which has just composed it), so a bad value or a stale ``params.yaml`` fails at
once with one line that names the key and the fix.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

from genrelab.config import ConfigError, check_params_current, load_params, validate_params

__all__ = ["stage_parser", "run_stage"]


def stage_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the ``--params`` option every stage takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="composed parameters file")
    parser.add_argument("--conf", default="conf", help="Hydra config folder params.yaml is composed from")
    return parser


def _exit_on_signal(signum: int, frame: Any) -> None:
    """Turn SIGTERM/SIGHUP into ``SystemExit``, so ``finally`` blocks and atomic writers clean up."""
    signal.signal(signum, signal.SIG_DFL)  # a second signal kills at once
    raise SystemExit(128 + signum)


def run_stage(main, description: str, configure) -> None:
    """Parse arguments, load params, call ``main(args, params)``; config errors exit 2 cleanly.

    ``SIGTERM`` and ``SIGHUP`` (how DVC and job schedulers stop a stage) raise ``SystemExit``
    like Ctrl-C raises ``KeyboardInterrupt``, so the atomic writers of :mod:`genrelab.io`
    remove their temporary files instead of leaving them in an output folder.

    Parameters
    ----------
    main : callable
        ``main(args, params) -> None``.
    description : str
        Shown by ``--help``.
    configure : callable
        ``configure(parser)`` adds the stage's path arguments.
    """
    stops = [sig for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if sig is not None]
    for sig in stops:  # the default action would skip cleanup: temporaries would stay in outputs
        signal.signal(sig, _exit_on_signal)
    if hasattr(signal, "pthread_sigmask"):  # a mask inherited from the parent would keep them pending forever
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
    logging.basicConfig(level=os.environ.get("GENRELAB_LOG", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    parser = stage_parser(description)
    configure(parser)
    args = parser.parse_args()
    from genrelab.download import DownloadError, ExtractError

    try:
        params: dict[str, Any] = load_params(args.params)
        settings = validate_params(params)
        if not os.environ.get("DVC_EXP_NAME"):
            # under `dvc exp run` params.yaml was composed from conf/ when the experiment was
            # queued; a queued run's clone may lack untracked conf/ files, so comparing would mislead
            check_params_current(params, config_dir=args.conf, params_path=args.params)
        if "compute" in settings:  # where per-track maps run (never what they compute)
            from genrelab.compute import configure

            configure(settings["compute"])
        main(args, params)
    except (ConfigError, FileNotFoundError, PermissionError, DownloadError, ExtractError) as exc:
        # a bad setting or a missing or refused input (weights, model graph, archive): its message says
        # what is missing and how to fix it, so a traceback would only bury it
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
