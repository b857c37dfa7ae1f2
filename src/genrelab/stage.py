"""Shared plumbing of the thin ``stages/*.py`` scripts: arguments, params, logging."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

from genrelab.config import ConfigError, from_mapping, load_params

__all__ = ["stage_parser", "run_stage"]


def stage_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the ``--params`` option every stage takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="composed parameters file")
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
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:  # the default action would skip cleanup: temporaries would stay in outputs
            signal.signal(sig, _exit_on_signal)
    logging.basicConfig(level=os.environ.get("GENRELAB_LOG", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    parser = stage_parser(description)
    configure(parser)
    args = parser.parse_args()
    from genrelab.download import DownloadError, ExtractError

    try:
        params: dict[str, Any] = load_params(args.params)
        if "compute" in params:  # where per-track maps run (never what they compute)
            from genrelab.compute import ComputeSettings, configure

            configure(from_mapping(ComputeSettings, params["compute"], section="compute"))
        main(args, params)
    except (ConfigError, FileNotFoundError, PermissionError, DownloadError, ExtractError) as exc:
        # a bad setting or a missing or refused input (weights, model graph, archive): its message says
        # what is missing and how to fix it, so a traceback would only bury it
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
