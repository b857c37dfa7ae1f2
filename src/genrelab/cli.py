"""The ``genrelab`` command line.

Subcommands are registered in :data:`COMMANDS` (name -> ``"module:function"``); each function
takes its own argument list and returns an exit status, so a subcommand's imports stay lazy.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

from genrelab import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "params": ("genrelab.cli:params_command", "compose conf/ into params.yaml (what `dvc exp run` does)"),
    "report": (
        "genrelab.experiments.report:report_command",
        "which experiment is best, by how much: ranked table, plots",
    ),
    "sweep": ("genrelab.experiments.report:sweep_command", "queue (and run) a recipe's grid of DVC experiments"),
    "compare": ("genrelab.experiments.compare:compare_command", "two experiments: difference, its interval, McNemar p"),
    "audit-leakage": ("genrelab.experiments.audit:audit_command", "one setup under leaky vs honest splits: the gap"),
    "predict": ("genrelab.predict:predict_command", "predict the genre of audio files with a model bundle"),
    "card": ("genrelab.models.card:card_command", "print a model bundle's card: training data, test metrics, revision"),
    "models": ("genrelab.embeddings.catalog:models_command", "list or fetch pretrained embedding models"),
    "demo": ("genrelab.webapp:demo_command", "web demo: upload or record audio, see its genre"),
    "store": ("genrelab.store:store_command", "the per-track store: info, verify, rm"),
}


def describe(command) -> str:
    """Help text of a command from its docstring: the first paragraph, without the
    ``genrelab NAME ...``: prefix and without reStructuredText's double backticks."""
    text = " ".join((command.__doc__ or "").strip().split("\n\n")[0].split())
    text = re.sub(r"^``genrelab [^`]*``:\s*", "", text)
    text = re.sub(r"``([^`]+)``", r"\1", text)
    text = re.sub(r":(?:func|class|mod|data):`~?([^`]+)`", r"\1", text)
    return text[:1].upper() + text[1:]


def params_command(argv: list[str]) -> int:
    """``genrelab params [OVERRIDES...]``: rewrite params.yaml from conf/ (and overrides), validated."""
    from genrelab.config import compose_yaml
    from genrelab.io import write_text

    p = argparse.ArgumentParser(prog="genrelab params", description=describe(params_command))
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=rf slicing.length_s=5")
    p.add_argument("--conf", default="conf", help="Hydra config folder")
    p.add_argument("--out", default="params.yaml", help="file to write ('-' prints it)")
    args = p.parse_args(argv)
    text = compose_yaml(args.overrides, config_dir=args.conf)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        write_text(args.out, text)
        print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="genrelab", description="Reproducible, leakage-free music genre classification experiments.",
        epilog="commands:\n" + "\n".join(f"  {k:<16}{v[1]}" for k, v in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"genrelab {__version__}")
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="command")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    if argv and argv[0] in COMMANDS:  # the command's own arguments untouched (argparse would drop a "--")
        command, rest = argv[0], argv[1:]
    else:
        ns = parser.parse_args(argv)
        command, rest = ns.command, ns.args
    module, func = COMMANDS[command][0].split(":")
    from genrelab.config import ConfigError

    try:
        return int(getattr(importlib.import_module(module), func)(rest) or 0)
    except ConfigError as exc:  # a bad setting: its message names the key and the fix
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
