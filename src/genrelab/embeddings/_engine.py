"""What runs inside the process that imports essentia-tensorflow.

Import this module only where Essentia may be loaded: in the worker subprocess
(:mod:`genrelab.embeddings._worker`), or in-process when the caller asked for it
(``isolate=False``). Never import ``tensorflow`` in the same process: the TensorFlow that
essentia-tensorflow bundles crashes alongside it.

Two engines, chosen by name from :data:`ENGINES`:

* :class:`PatchEngine` -- audio at 16 kHz -> log-mel frames (Essentia's own front end)
  -> patches (:mod:`genrelab.embeddings.patching`) -> one ``TensorflowPredict`` call per
  batch of patches, pooled across clips.
* :class:`HeadEngine` -- embeddings -> ``TensorflowPredict2D`` (classification heads).
"""

from __future__ import annotations

import os

# Quiet TensorFlow's C++ start-up chatter unless the user asked for it. oneDNN graph
# rewrites (TF_ENABLE_ONEDNN_OPTS=1) crash this TensorFlow build with SIGFPE on some
# virtual machines, so they stay at TensorFlow's default (off) unless set explicitly.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from genrelab.embeddings.patching import make_patches  # noqa: E402

__all__ = ["PatchEngine", "HeadEngine", "ENGINES"]


def _essentia():
    try:
        import essentia
        import essentia.standard as es
    except ImportError as exc:
        raise ImportError(
            f"essentia-tensorflow is needed to run Essentia's models but cannot be imported ({exc}); install it with "
            "`pip install -c constraints.txt --pre 'essentia-tensorflow>=2.1b6.dev1389'` (not together with the "
            "plain `essentia` wheel: both provide the module `essentia`)"
        ) from exc
    if not hasattr(es, "TensorflowPredict"):
        raise ImportError("the installed `essentia` has no TensorFlow support; replace it with essentia-tensorflow "
                          "(`pip uninstall essentia && pip install -c constraints.txt --pre "
                          "'essentia-tensorflow>=2.1b6.dev1389'`)")

    essentia.log.infoActive = False
    return essentia, es


class PatchEngine:
    """Embeds 16 kHz signals with one loaded graph.

    Parameters
    ----------
    graph : str
        Frozen graph (``.pb``).
    frontend : str
        ``TensorflowInputMusiCNN`` or ``TensorflowInputVGGish``.
    frame_size, hop_size : int
        STFT frame and hop in samples.
    patch_size, patch_hop : int
        Frames per patch and between patch starts.
    input_node, output_node : str
        Graph input and the output to return.
    batch_size : int
        Patches per ``TensorflowPredict`` call.
    fixed_batch : int or None
        If the graph takes exactly this many patches, short batches are zero-padded and the
        padding's outputs dropped.
    """

    def __init__(self, *, graph: str, frontend: str, frame_size: int, hop_size: int, patch_size: int,
                 patch_hop: int, input_node: str, output_node: str, batch_size: int,
                 fixed_batch: int | None) -> None:
        self._essentia, es = _essentia()
        self.frame_size, self.hop_size = int(frame_size), int(hop_size)
        self.patch_size, self.patch_hop = int(patch_size), int(patch_hop)
        self.input_node, self.output_node = input_node, output_node
        self.batch_size = int(fixed_batch or batch_size)
        self.fixed_batch = fixed_batch
        self._frontend = getattr(es, frontend)()
        self._frame_generator = es.FrameGenerator
        self._predict = es.TensorflowPredict(graphFilename=str(graph), inputs=[input_node], outputs=[output_node])
        self.n_bands = int(self._frontend(np.zeros(self.frame_size, dtype=np.float32)).shape[0])
        # Warm-up: loads the graph now (so a wrong node name fails at start-up, not on the
        # first clip) and tells the output size.
        self.dim = int(self.predict(np.zeros((1, self.patch_size, self.n_bands), np.float32)).shape[1])

    def info(self) -> dict:
        """Output size and band count, for the caller."""
        return {"dim": self.dim, "n_bands": self.n_bands}

    def frames(self, y: np.ndarray) -> np.ndarray:
        """Log-mel frames of a 16 kHz signal, ``[shape=(n_frames, n_bands)]``."""
        y = np.ascontiguousarray(y, dtype=np.float32)
        if y.size == 0:
            return np.zeros((0, self.n_bands), dtype=np.float32)
        fe = self._frontend
        rows = [fe(f) for f in self._frame_generator(y, frameSize=self.frame_size, hopSize=self.hop_size)]
        if not rows:
            return np.zeros((0, self.n_bands), dtype=np.float32)
        return np.asarray(rows, dtype=np.float32)

    def frames_many(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        """:meth:`frames` of several signals."""
        return [self.frames(y) for y in signals]

    def predict(self, patches: np.ndarray) -> np.ndarray:
        """Run the graph on ``patches [shape=(n, patch_size, n_bands)]``; returns ``(n, dim)``."""
        n = patches.shape[0]
        outs = []
        for lo in range(0, n, self.batch_size):
            batch = patches[lo: lo + self.batch_size]
            real = batch.shape[0]
            if self.fixed_batch and real < self.fixed_batch:
                pad = np.zeros((self.fixed_batch - real, *batch.shape[1:]), dtype=np.float32)
                batch = np.concatenate([batch, pad])
            pool = self._essentia.Pool()
            pool.set(self.input_node, np.ascontiguousarray(batch[:, None], dtype=np.float32))
            out = np.asarray(self._predict(pool)[self.output_node], dtype=np.float32)
            outs.append(out.reshape(out.shape[0], -1)[:real])
        if not outs:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        return np.concatenate(outs)

    def embed(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        """Embed several 16 kHz signals; their patches share batches.

        Returns
        -------
        outputs : list of np.ndarray [shape=(n_patches_i, dim), dtype=float32]
        """
        per_clip = [make_patches(self.frames(y), patch_size=self.patch_size, patch_hop=self.patch_hop)
                    for y in signals]
        counts = [p.shape[0] for p in per_clip]
        if sum(counts) == 0:
            return [np.zeros((0, self.dim), dtype=np.float32) for _ in signals]
        out = self.predict(np.concatenate(per_clip))
        return np.split(out, np.cumsum(counts)[:-1])


class HeadEngine:
    """Runs a classification head (embeddings -> probabilities) with ``TensorflowPredict2D``.

    Parameters
    ----------
    graph : str
        Frozen graph (``.pb``).
    input_node, output_node : str
        Graph input and output.
    input_dim : int
        Embedding size the head takes.
    batch_size : int
        Rows per TensorFlow call.
    """

    def __init__(self, *, graph: str, input_node: str, output_node: str, input_dim: int, batch_size: int) -> None:
        _, es = _essentia()
        self.input_dim = int(input_dim)
        self._predict = es.TensorflowPredict2D(graphFilename=str(graph), input=input_node, output=output_node,
                                               dimensions=self.input_dim, batchSize=int(batch_size))
        self.dim = int(self.predict(np.zeros((1, self.input_dim), np.float32)).shape[1])

    def info(self) -> dict:
        return {"dim": self.dim}

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """``embeddings [shape=(n, input_dim)]`` -> ``(n, n_classes)`` float32."""
        x = np.ascontiguousarray(embeddings, dtype=np.float32)
        if x.shape[0] == 0:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        out = np.asarray(self._predict(x), dtype=np.float32)
        return out.reshape(x.shape[0], -1)


ENGINES = {"patch": PatchEngine, "head": HeadEngine}
"""Engine classes by the name the parent process asks for."""
