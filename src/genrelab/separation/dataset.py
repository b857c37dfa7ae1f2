"""The separate stage: every track's stems for one separator, and their quality on known stems."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from genrelab.io import load_audio
from genrelab.variants import separation_key

__all__ = ["separate_dataset", "separation_quality", "SEPARATED_PARTS", "TRUE_PARTS"]


def separate_dataset(index: pd.DataFrame, *, separator: str, settings: dict, dataset_dir: Path,
                     separated_dir: Path, sample_rate: int, progress: bool = True) -> dict:
    """Separate every track once with ``separator``; resume where an earlier run stopped.

    Parameters
    ----------
    index : pd.DataFrame
        Dataset index.
    separator : {'none', 'oracle', 'hpss', 'demucs'}
        ``none`` and ``oracle`` need no computation.
    settings : dict
        The separator's settings (``separation.<separator>``).
    dataset_dir, separated_dir : Path
        Output of the prepare stage; this stage's (persistent) output folder.
    sample_rate : int
        Rate the stems are written at (Hz).

    Returns
    -------
    summary : dict
        Counts of computed, skipped (already done) and failed tracks.
    """
    from genrelab.datasets import resolve_path

    separated_dir = Path(separated_dir)
    separated_dir.mkdir(parents=True, exist_ok=True)
    readme = separated_dir / "README.txt"
    if not readme.is_file():  # never empty: DVC warns about an empty output folder on every run
        from genrelab.io import write_text

        write_text(readme, SEPARATED_README)
    if separator in ("none", "oracle"):  # the mix, or the dataset's own stems: nothing to compute
        return {"n_tracks": int(len(index)), "n_computed": 0, "n_skipped": 0, "n_failed": 0}
    from genrelab.separation import make_separator, separate_tracks

    out = separated_dir / separation_key(separator, settings)
    sep = make_separator(separator, **settings)
    tracks = [(str(t), resolve_path(dataset_dir, p)) for t, p in zip(index["track_id"], index["path"])]
    table = separate_tracks(tracks, out, sep, sr=sample_rate, progress=progress)
    per_track = table.groupby("track_id")["status"].first()
    summary: dict = {"n_tracks": int(per_track.isin(["computed", "skipped"]).sum()),
                     "n_computed": int((per_track == "computed").sum()),
                     "n_skipped": int((per_track == "skipped").sum()),
                     "n_failed": int(per_track.str.startswith("failed").sum())}
    if (Path(dataset_dir) / "stems").is_dir():
        summary["quality"] = separation_quality(index, separator=separator, dataset_dir=Path(dataset_dir),
                                                stems_dir=out, sample_rate=sample_rate, progress=progress)
    return summary


SEPARATED_README = """Stems of the separate stage: <separator>-<settings digest>/<track_id>/<stem>.flac.
Computed once per track and settings and kept between runs (a persistent DVC output); the
'normal' and 'oracle_*' variants need none.
"""

SEPARATED_PARTS: dict[str, dict[str, tuple[str, ...]]] = {
    "hpss": {"harmonic": ("harmonic",), "percussive": ("percussive",)},
    "demucs": {"harmonic": ("vocals", "other"), "percussive": ("drums", "bass")},
}
"""How each separator's stems estimate the harmonic (vocals + other) and percussive
(drums + bass) parts of a track."""

TRUE_PARTS = {"harmonic": ("vocals", "other"), "percussive": ("drums", "bass")}


def separation_quality(index: pd.DataFrame, *, separator: str, dataset_dir: Path, stems_dir: Path,
                       sample_rate: int, progress: bool = True) -> dict:
    """SDR and SI-SDR of the separated harmonic and percussive parts against the true stems.

    Only for datasets that know their true stems (``dataset_dir/stems/<track_id>/<stem>.flac``,
    the built-in synthetic one): the true harmonic part is vocals + other, the percussive part
    drums + bass.

    Returns
    -------
    quality : dict
        ``{part: {"sdr_db_mean", "sdr_db_median", "si_sdr_db_mean", "si_sdr_db_median"}}`` and
        ``n_tracks``; numbers only.
    """
    from genrelab.progress import progress_bar

    from genrelab.separation.quality import sdr, si_sdr

    def mix(folder: Path, stems: tuple[str, ...]) -> np.ndarray:
        parts = [load_audio(folder / f"{s}.flac", sr=sample_rate)[0] for s in stems]
        n = min(len(p) for p in parts)
        return np.sum([p[:n] for p in parts], axis=0)

    scores: dict[str, dict[str, list[float]]] = {p: {"sdr": [], "si_sdr": []} for p in TRUE_PARTS}
    for track_id in progress_bar(index["track_id"].astype(str), desc="separation quality", disable=not progress):
        truth_dir, est_dir = Path(dataset_dir) / "stems" / track_id, Path(stems_dir) / track_id
        if not (est_dir / "done.json").is_file() or not truth_dir.is_dir():
            continue
        for part, true_stems in TRUE_PARTS.items():
            ref, est = mix(truth_dir, true_stems), mix(est_dir, SEPARATED_PARTS[separator][part])
            n = min(len(ref), len(est))
            scores[part]["sdr"].append(sdr(est[:n], ref[:n]))
            scores[part]["si_sdr"].append(si_sdr(est[:n], ref[:n]))
    out: dict = {"n_tracks": len(scores["harmonic"]["sdr"])}
    for part, d in scores.items():
        out[part] = {}
        for key, values in d.items():
            v = np.asarray(values, dtype=float)
            v = v[np.isfinite(v)]
            if v.size:  # metrics hold numbers only: no NaN for an empty set
                out[part][f"{key}_db_mean"] = float(v.mean())
                out[part][f"{key}_db_median"] = float(np.median(v))
    return out
