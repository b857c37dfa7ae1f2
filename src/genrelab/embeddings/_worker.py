"""Subprocess that owns one Essentia model: ``python -m genrelab.embeddings._worker``.

The parent (:class:`genrelab.embeddings.essentia_models._SubprocessBackend`) talks to it
over stdin/stdout with pickled ``(command, payload)`` tuples:

* ``("init", {"engine": "patch"|"head", "kwargs": {...}})`` -> ``("ok", info)``: load the model;
* ``("call", {"method": name, "args": [...]})`` -> ``("ok", result)``;
* ``("close", None)`` or end of input -> exit.

A failure is answered with ``("error", exception type, message, traceback)`` and the worker
keeps serving. File descriptor 1 is redirected to stderr before Essentia is imported, so
that nothing Essentia or TensorFlow prints can corrupt the reply stream.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback


def main() -> int:
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # C-level prints now go to stderr
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer

    from genrelab.embeddings._engine import ENGINES

    engine = None
    while True:
        try:
            command, payload = pickle.load(requests)
        except EOFError:
            break
        if command == "close":
            break
        try:
            if command == "init":
                engine = ENGINES[payload["engine"]](**payload["kwargs"])
                reply = ("ok", engine.info())
            elif command == "call":
                if engine is None:
                    raise RuntimeError("the worker has no model loaded yet (send 'init' first)")
                reply = ("ok", getattr(engine, payload["method"])(*payload["args"]))
            else:
                raise ValueError(f"unknown worker command {command!r}")
        except Exception as exc:  # reported to the parent, which raises it there
            reply = ("error", type(exc).__name__, str(exc), traceback.format_exc())
        pickle.dump(reply, replies, protocol=pickle.HIGHEST_PROTOCOL)
        replies.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
