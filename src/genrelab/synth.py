"""The built-in deterministic synthetic music-genre dataset.

Every track is rendered from a :class:`GenreTemplate` (tempo range, meter, swing, drum grooves,
chord progressions, instrument timbres, bass and comping styles, a lead/vocal-like melody,
mix levels, reverb, dynamics and noise) and from the style of a synthetic *artist*: each
artist belongs to one genre, and a style drawn once per artist (tempo centre, key, timbres,
drum kit, grooves, progressions, mix balance ...) is shared by all of its tracks. A split that
groups tracks by artist is therefore harder than a random one, as with real data.

The templates overlap on purpose, as real genres do (rock and metal share distorted power
chords, disco and pop share four-on-the-floor grooves, blues and jazz share swing and seventh
chords ...), and every track varies (tempo, key, instrumentation, mix levels, noise), so a
classifier on MFCC statistics learns the genres well above chance but not perfectly.

Each track is four separately generated stems, ``drums``, ``bass``, ``vocals`` (the
lead/vocal-like melody) and ``other`` (chords, pads and the recording's noise floor, which is
part of ``other`` so that the four stems sum to the mix exactly). The mix is the sum of the
stems, normalised to a peak of -1 dBFS with the stems scaled by the same gain.

Rendering is pure numpy/scipy and deterministic: each track draws from its own
:class:`numpy.random.Generator`, derived with :class:`numpy.random.SeedSequence` from
``(seed, genre index, track index)`` (and each artist's style from ``(seed, genre index,
artist index)``), so a track is bit-identical however many other tracks are rendered, and in
whatever order. Notes are rendered with band-limited wavetables (one table per pitch, so
partials never alias) and vectorised envelopes; a 30 s track at 22050 Hz takes roughly
0.1-0.15 s on one core and about 70 MB of memory at its peak.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genrelab import GENRES
from genrelab.io import write_audio, write_text

__all__ = [
    "STEMS",
    "INDEX_COLUMNS",
    "DRUM_SOUNDS",
    "SCALES",
    "CHORDS",
    "Timbre",
    "TIMBRES",
    "DrumKit",
    "KITS",
    "DrumPattern",
    "GenreTemplate",
    "TEMPLATES",
    "BASS_STYLES",
    "COMP_STYLES",
    "SynthSettings",
    "track_id",
    "artist_id",
    "render_track",
    "generate_dataset",
]

STEMS: tuple[str, ...] = ("drums", "bass", "vocals", "other")
"""The four stems of every track, in the order they are summed."""

INDEX_COLUMNS: tuple[str, ...] = ("track_id", "genre", "artist", "path", "duration_s", "sample_rate")
"""Columns of ``index.csv``, in order."""

_TABLE = 2048  # wavetable length (samples per cycle); a power of two for cheap wrapping
_PEAK_DBFS = -1.0

# --------------------------------------------------------------------------------------------
# Music theory
# --------------------------------------------------------------------------------------------

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "major_pent": (0, 2, 4, 7, 9),
    "minor_pent": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
}
"""Scales as semitones above the tonic."""

CHORDS: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "sus4": (0, 5, 7),
    "5": (0, 7, 12),
    "6": (0, 4, 7, 9),
    "m6": (0, 3, 7, 9),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "m7": (0, 3, 7, 10),
    "m7b5": (0, 3, 6, 10),
    "9": (0, 4, 10, 14),
    "m9": (0, 3, 10, 14),
    "add9": (0, 4, 7, 14),
}
"""Chord qualities as semitones above the chord root."""

_NUMERALS = {"i": 0, "ii": 2, "iii": 4, "iv": 5, "v": 7, "vi": 9, "vii": 11}
_CHORD_TOKEN = re.compile(r"(?P<acc>[b#]?)(?P<num>[iv]+|[IV]+)(?P<quality>.*)")


@functools.lru_cache(maxsize=None)
def _parse_progression(text: str) -> tuple[str, tuple[tuple[int, str], ...]]:
    """Parse ``"minor: i bVI bVII i"`` into its mode and ``(root semitone, quality)`` chords.

    Upper-case numerals are major, lower-case minor; a suffix names another quality
    (``7`` is a dominant seventh on an upper-case numeral and a minor seventh on a lower-case
    one, likewise ``9`` and ``6``; ``maj7``, ``m7b5``, ``5`` ... are taken as written).
    """
    mode, _, body = text.partition(":")
    mode = mode.strip()
    if mode not in ("major", "minor"):
        raise ValueError(f"progression {text!r}: mode must be 'major' or 'minor'")
    chords = []
    for token in body.split():
        m = _CHORD_TOKEN.fullmatch(token)
        if m is None or m["num"].lower() not in _NUMERALS:
            raise ValueError(f"progression {text!r}: cannot parse chord {token!r}")
        num, suffix = m["num"], m["quality"]
        root = (_NUMERALS[num.lower()] + {"": 0, "b": -1, "#": 1}[m["acc"]]) % 12
        minor = num.islower()
        if not suffix:
            quality = "min" if minor else "maj"
        elif minor and suffix in ("7", "9", "6"):
            quality = "m" + suffix
        else:
            quality = suffix
        if quality not in CHORDS:
            raise ValueError(f"progression {text!r}: unknown chord quality {quality!r} in {token!r}")
        chords.append((root, quality))
    if not chords:
        raise ValueError(f"progression {text!r}: no chords")
    return mode, tuple(chords)


def _midi_hz(midi: np.ndarray | float) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def _near(pc: int, centre: float) -> int:
    """The MIDI note of pitch class ``pc`` closest to ``centre``."""
    base = int(round(centre)) - 6
    return base + (pc - base) % 12


# --------------------------------------------------------------------------------------------
# Timbres
# --------------------------------------------------------------------------------------------

_VOWELS: tuple[tuple[tuple[float, float, float], ...], ...] = (
    ((730.0, 90.0, 1.0), (1090.0, 110.0, 0.5), (2440.0, 170.0, 0.25)),  # a
    ((530.0, 70.0, 1.0), (1840.0, 100.0, 0.5), (2480.0, 170.0, 0.3)),  # e
    ((300.0, 60.0, 1.0), (2290.0, 120.0, 0.4), (3010.0, 200.0, 0.3)),  # i
    ((570.0, 80.0, 1.0), (840.0, 90.0, 0.6), (2410.0, 170.0, 0.2)),  # o
    ((330.0, 60.0, 1.0), (870.0, 90.0, 0.4), (2240.0, 170.0, 0.15)),  # u
)


@dataclass(frozen=True)
class Timbre:
    """A pitched instrument: a harmonic spectrum, an amplitude envelope and a few colours.

    Partial ``k`` (1 = fundamental) has amplitude ``k ** -rolloff`` (even partials times
    ``even``), times the resonances in ``formants``; partials above 0.45 times the sample
    rate are dropped, so tables never alias.

    Attributes
    ----------
    rolloff : float
        Spectral slope of the partials (0.7: bright and buzzy, 3: nearly a sine).
    even : float
        Weight of the even partials (0: hollow, clarinet-like).
    max_partials : int
        Most partials kept.
    formants : tuple of (centre Hz, bandwidth Hz, gain)
        Fixed resonances (a body, a bell, a nasal colour).
    formant_floor : float
        Gain outside the resonances (1 when there are none).
    vowels : bool
        Shape each note with one of five vowel formant sets (a vocal-like lead).
    attack_s, decay_s, sustain, release_s : float
        Envelope: linear attack, exponential decay (time constant, s) towards ``sustain``,
        exponential release after the note's end.
    bright_decay_s : float or None
        If set, the spectrum darkens after each onset (plucks, pianos) with this time
        constant, fading towards ``rolloff + dark_extra``.
    dark_extra : float
        Extra rolloff of the dark spectrum.
    drive : float
        ``tanh`` distortion drive applied to the whole part (0: clean).
    breath : float
        Level of filtered noise (breath, consonants, bow noise) added at each note of a lead.
    glide_s : float
        Portamento time constant between notes (s).
    """

    rolloff: float = 1.2
    even: float = 1.0
    max_partials: int = 40
    formants: tuple[tuple[float, float, float], ...] = ()
    formant_floor: float = 1.0
    vowels: bool = False
    attack_s: float = 0.005
    decay_s: float = math.inf
    sustain: float = 1.0
    release_s: float = 0.05
    bright_decay_s: float | None = None
    dark_extra: float = 1.0
    drive: float = 0.0
    breath: float = 0.0
    glide_s: float = 0.0


TIMBRES: dict[str, Timbre] = {
    # keyboards, guitars, strings, pads (the ``other`` stem)
    "piano": Timbre(rolloff=1.3, even=0.8, max_partials=30, attack_s=0.002, decay_s=0.9, sustain=0.0,
                    release_s=0.2, bright_decay_s=0.2, dark_extra=1.3),
    "epiano": Timbre(rolloff=2.2, even=0.6, max_partials=16, formants=((1100.0, 500.0, 0.8),), formant_floor=0.6,
                     attack_s=0.003, decay_s=1.3, sustain=0.1, release_s=0.25, bright_decay_s=0.07, dark_extra=1.5),
    "organ": Timbre(rolloff=0.8, even=1.0, max_partials=8, attack_s=0.008, release_s=0.03),
    "strings": Timbre(rolloff=1.0, max_partials=30, formants=((450.0, 350.0, 1.0), (1500.0, 900.0, 0.5),
                                                              (3200.0, 1600.0, 0.4)),
                      formant_floor=0.3, attack_s=0.25, release_s=0.35),
    "pad": Timbre(rolloff=1.7, even=0.9, max_partials=20, attack_s=0.35, release_s=0.6),
    "woodwinds": Timbre(rolloff=1.5, even=0.15, max_partials=14, attack_s=0.06, release_s=0.1, breath=0.04),
    "brass": Timbre(rolloff=0.9, max_partials=24, formants=((1200.0, 900.0, 1.2),), formant_floor=0.5,
                    attack_s=0.03, decay_s=0.6, sustain=0.7, release_s=0.08),
    "clean_guitar": Timbre(rolloff=1.2, even=0.9, max_partials=30, formants=((200.0, 200.0, 0.8),
                                                                            (2500.0, 2000.0, 0.4)),
                           formant_floor=0.6, attack_s=0.002, decay_s=0.7, sustain=0.05, release_s=0.08,
                           bright_decay_s=0.12, dark_extra=1.0),
    "acoustic_guitar": Timbre(rolloff=1.0, even=0.9, max_partials=36, formants=((220.0, 180.0, 1.0),
                                                                               (3000.0, 2000.0, 0.5)),
                              formant_floor=0.5, attack_s=0.001, decay_s=0.5, sustain=0.0, release_s=0.1,
                              bright_decay_s=0.06, dark_extra=1.2),
    "twang_guitar": Timbre(rolloff=0.85, even=0.7, max_partials=36, formants=((1800.0, 900.0, 1.5),),
                           formant_floor=0.6, attack_s=0.001, decay_s=0.35, sustain=0.05, release_s=0.06,
                           bright_decay_s=0.15, dark_extra=0.8),
    "crunch_guitar": Timbre(rolloff=1.2, max_partials=24, attack_s=0.003, decay_s=1.2, sustain=0.45,
                            release_s=0.06, drive=3.0),
    "dist_guitar": Timbre(rolloff=1.0, max_partials=24, attack_s=0.002, decay_s=2.0, sustain=0.7,
                          release_s=0.05, drive=9.0),
    "synth_pluck": Timbre(rolloff=1.0, even=1.0, max_partials=40, attack_s=0.002, decay_s=0.25, sustain=0.0,
                          release_s=0.1, bright_decay_s=0.05, dark_extra=1.8),
    # basses (the ``bass`` stem)
    "bass_finger": Timbre(rolloff=1.9, even=0.9, max_partials=16, attack_s=0.004, decay_s=0.8, sustain=0.3,
                          release_s=0.05, bright_decay_s=0.1, dark_extra=1.0),
    "bass_pick": Timbre(rolloff=1.3, even=0.9, max_partials=24, attack_s=0.002, decay_s=0.6, sustain=0.4,
                        release_s=0.04, bright_decay_s=0.05, dark_extra=1.0),
    "bass_upright": Timbre(rolloff=2.3, even=0.8, max_partials=12, formants=((120.0, 100.0, 1.0),),
                           formant_floor=0.7, attack_s=0.008, decay_s=0.45, sustain=0.1, release_s=0.08),
    "bass_synth": Timbre(rolloff=1.0, even=0.5, max_partials=30, attack_s=0.004, decay_s=0.3, sustain=0.6,
                         release_s=0.03, bright_decay_s=0.06, dark_extra=1.6),
    "bass_808": Timbre(rolloff=4.0, max_partials=4, attack_s=0.002, decay_s=1.0, sustain=0.2, release_s=0.1,
                       drive=1.5, glide_s=0.02),
    "bass_dist": Timbre(rolloff=1.2, max_partials=24, attack_s=0.002, decay_s=1.0, sustain=0.7,
                        release_s=0.04, drive=4.0),
    "cello": Timbre(rolloff=1.1, max_partials=24, formants=((300.0, 250.0, 1.0), (1000.0, 600.0, 0.5)),
                    formant_floor=0.3, attack_s=0.15, release_s=0.3, breath=0.02),
    # leads (the ``vocals`` stem)
    "voice": Timbre(rolloff=1.1, max_partials=40, vowels=True, formant_floor=0.05, attack_s=0.04,
                    release_s=0.08, breath=0.02, glide_s=0.03),
    "voice_breathy": Timbre(rolloff=1.7, max_partials=30, vowels=True, formant_floor=0.05, attack_s=0.06,
                            release_s=0.12, breath=0.08, glide_s=0.04),
    "voice_nasal": Timbre(rolloff=1.0, max_partials=40, vowels=True, formants=((1900.0, 500.0, 0.8),),
                          formant_floor=0.05, attack_s=0.03, release_s=0.06, breath=0.02, glide_s=0.05),
    "rap": Timbre(rolloff=1.2, max_partials=40, vowels=True, formant_floor=0.05, attack_s=0.008,
                  release_s=0.03, breath=0.3, glide_s=0.01),
    "scream": Timbre(rolloff=0.7, max_partials=40, vowels=True, formant_floor=0.15, attack_s=0.01,
                     release_s=0.05, breath=0.6, drive=6.0, glide_s=0.02),
    "sax": Timbre(rolloff=0.95, even=0.8, max_partials=30, formants=((500.0, 300.0, 1.0), (1500.0, 600.0, 0.7)),
                  formant_floor=0.3, attack_s=0.03, release_s=0.06, breath=0.05, glide_s=0.02),
    "trumpet": Timbre(rolloff=0.85, max_partials=30, formants=((1300.0, 800.0, 1.4),), formant_floor=0.4,
                      attack_s=0.025, decay_s=0.8, sustain=0.8, release_s=0.05, breath=0.02),
    "violin": Timbre(rolloff=0.9, max_partials=36, formants=((280.0, 150.0, 0.6), (700.0, 400.0, 0.8),
                                                             (3000.0, 1500.0, 0.7)),
                     formant_floor=0.25, attack_s=0.07, release_s=0.12, breath=0.03, glide_s=0.03),
    "flute": Timbre(rolloff=3.0, even=0.6, max_partials=8, attack_s=0.05, release_s=0.08, breath=0.08),
    "lead_guitar": Timbre(rolloff=1.1, max_partials=24, attack_s=0.003, decay_s=2.0, sustain=0.6,
                          release_s=0.08, drive=5.0, glide_s=0.04),
    "steel": Timbre(rolloff=1.5, max_partials=24, attack_s=0.004, decay_s=1.5, sustain=0.3, release_s=0.15,
                    glide_s=0.12),
    "harmonica": Timbre(rolloff=0.9, even=0.5, max_partials=24, formants=((1500.0, 1000.0, 1.0),),
                        formant_floor=0.4, attack_s=0.03, release_s=0.06, breath=0.06, glide_s=0.05),
    "synth_lead": Timbre(rolloff=1.0, even=1.0, max_partials=40, attack_s=0.01, release_s=0.06, glide_s=0.03),
}
"""Pitched instruments by name; templates refer to them."""


def _resonance(freqs: np.ndarray, formants: Sequence[tuple[float, float, float]], floor: float) -> np.ndarray:
    gain = np.full(freqs.shape, floor)
    for centre, bandwidth, g in formants:
        gain += g / (1.0 + ((freqs - centre) / (0.5 * bandwidth)) ** 2)
    return gain


def _wavetables(timbre: Timbre, midi: np.ndarray, vowel: np.ndarray, sr: int, *, rolloff: float,
                formant_shift: float) -> np.ndarray:
    """One band-limited single-cycle table per (pitch, vowel) pair.

    Returns
    -------
    tables : np.ndarray [shape=(len(midi), _TABLE)], float32
        Each row has unit RMS.
    """
    f0 = _midi_hz(midi)[:, None]
    k = np.arange(1, timbre.max_partials + 1, dtype=np.float64)[None, :]
    freqs = f0 * k
    amp = k ** -rolloff * np.where(k % 2 == 0, timbre.even, 1.0)
    amp = amp * (freqs < 0.45 * sr)
    if timbre.formants:
        amp = amp * _resonance(freqs, [(c * formant_shift, b, g) for c, b, g in timbre.formants],
                               timbre.formant_floor)
    if timbre.vowels:
        shaped = np.empty_like(amp)
        for v, formants in enumerate(_VOWELS):
            rows = vowel == v
            if rows.any():
                scaled = [(c * formant_shift, b * formant_shift, g) for c, b, g in formants]
                shaped[rows] = amp[rows] * _resonance(freqs[rows], scaled, timbre.formant_floor)
        amp = shaped
    spectrum = np.zeros((len(midi), _TABLE // 2 + 1), dtype=np.complex128)
    spectrum[:, 1 : timbre.max_partials + 1] = -1j * amp  # sine phase
    tables = np.fft.irfft(spectrum, n=_TABLE, axis=1)
    rms = np.sqrt(np.mean(tables**2, axis=1, keepdims=True))
    return (tables / np.maximum(rms, 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class _Notes:
    """A line of notes or chords (onsets in samples, sorted and distinct)."""

    onset: np.ndarray  # int64 [shape=(k,)]
    length: np.ndarray  # int64 [shape=(k,)], samples until note-off
    midi: np.ndarray  # float64 [shape=(k, voices)], one pitch per voice
    velocity: np.ndarray  # float32 [shape=(k,)]
    vowel: np.ndarray  # int64 [shape=(k,)]


def _notes(events: list[tuple], n: int, sr: int) -> _Notes | None:
    """Turn ``(time s, duration s, velocity, vowel, midi, [midi ...])`` events into :class:`_Notes`.

    Every event has the same number of pitches (one per voice). Events at or after the end
    are dropped; of several at one sample the last one wins.
    """
    if not events:
        return None
    arr = np.asarray(events, dtype=np.float64)
    onset = np.clip(np.round(arr[:, 0] * sr).astype(np.int64), 0, None)
    keep = onset < n
    arr, onset = arr[keep], onset[keep]
    if len(onset) == 0:
        return None
    order = np.argsort(onset, kind="stable")
    arr, onset = arr[order], onset[order]
    last = np.r_[onset[1:] != onset[:-1], True]
    arr, onset = arr[last], onset[last]
    length = np.maximum(np.round(arr[:, 1] * sr).astype(np.int64), 1)
    return _Notes(onset, length, arr[:, 4:], arr[:, 2].astype(np.float32), arr[:, 3].astype(np.int64))


def _render_line(notes: _Notes | None, timbre: Timbre, ctx: _Context, *, rolloff_shift: float = 0.0,
                 formant_shift: float = 1.0, vibrato_cents: float = 0.0, vibrato_hz: float = 5.5,
                 breath: np.ndarray | None = None, strum_s: float = 0.0) -> np.ndarray:
    """Render a line of notes (or of chords sharing one rhythm) with wavetables.

    The envelope is computed once for all voices; each voice has its own phase, and voice
    ``v`` is delayed by ``v * strum_s`` (a strummed chord).

    Returns
    -------
    y : np.ndarray [shape=(n,)], float32
    """
    from scipy import signal  # here, not at the top: SynthSettings alone must import fast
    n, sr = ctx.n, ctx.sr
    y = np.zeros(n, dtype=np.float32)
    if notes is None:
        return y
    onset, length = notes.onset, notes.length
    # a note sounds from its onset to the next one: per-sample values are runs of its values
    start = int(onset[0])
    m = n - start
    counts = np.diff(np.append(onset, n))

    def per_sample(values: np.ndarray) -> np.ndarray:
        return np.repeat(values, counts)

    since = ctx.sample_index[:m] - per_sample((onset - start).astype(np.int32))
    since = since.astype(np.float32)
    since *= np.float32(1.0 / sr)  # seconds since the note's onset
    # envelope: attack, decay towards the sustain level, release after the note's end
    env = since * np.float32(1.0 / timbre.attack_s)
    np.minimum(env, np.float32(1.0), out=env)
    if math.isfinite(timbre.decay_s):
        decay = since * np.float32(-1.0 / timbre.decay_s)
        np.exp(decay, out=decay)
        decay *= np.float32(1.0 - timbre.sustain)
        decay += np.float32(timbre.sustain)
        env *= decay
    release = per_sample(length.astype(np.float32) * np.float32(1.0 / sr))
    np.subtract(since, release, out=release)
    np.maximum(release, np.float32(0.0), out=release)
    release *= np.float32(-1.0 / timbre.release_s)
    np.exp(release, out=release)
    env *= release
    env *= per_sample(notes.velocity)
    vibrato = None
    if vibrato_cents > 0:  # a frequency factor, fading in over the first 0.25 s of each note
        ramp = since * np.float32(4.0)
        np.minimum(ramp, np.float32(1.0), out=ramp)
        vibrato = np.sin(ctx.time[start:] * np.float32(2 * np.pi * vibrato_hz))
        vibrato *= ramp
        vibrato *= np.float32(vibrato_cents / 1200.0)
        np.exp2(vibrato, out=vibrato)
    fade = None
    if timbre.bright_decay_s is not None:
        fade = since * np.float32(-1.0 / timbre.bright_decay_s)
        np.exp(fade, out=fade)
    # one table per (pitch, vowel) pair, shared by the voices
    voices = notes.midi.shape[1]
    key = np.round(notes.midi * 16).astype(np.int64) * 8 + notes.vowel[:, None]
    _, first, inverse = np.unique(key.ravel(), return_index=True, return_inverse=True)
    offsets = inverse.reshape(key.shape) * _TABLE
    midi_u, vowel_u = notes.midi.ravel()[first], np.repeat(notes.vowel, voices)[first]
    rolloff = timbre.rolloff + rolloff_shift
    bright = _wavetables(timbre, midi_u, vowel_u, sr, rolloff=rolloff, formant_shift=formant_shift).ravel()
    dark = None
    if fade is not None:
        dark = _wavetables(timbre, midi_u, vowel_u, sr, rolloff=rolloff + timbre.dark_extra,
                           formant_shift=formant_shift).ravel()
    hz = _midi_hz(notes.midi).astype(np.float32)
    total = np.zeros(m, dtype=np.float32)
    for v in range(voices):
        if timbre.glide_s > 0:  # portamento: smooth the pitch in octaves
            a = math.exp(-1.0 / (timbre.glide_s * sr))
            logf = per_sample(np.log2(hz[:, v]))
            f = signal.lfilter([1.0 - a], [1.0, -a], logf, zi=[a * logf[0]])[0].astype(np.float32)
            np.exp2(f, out=f)
        else:
            f = per_sample(hz[:, v])
        if vibrato is not None:
            f *= vibrato
        phase = np.cumsum(f, dtype=np.float64)
        phase *= _TABLE / sr
        pos = phase.astype(np.int64)
        pos &= _TABLE - 1
        pos += per_sample(offsets[:, v])
        wave = bright[pos]
        if dark is not None:
            dark_wave = dark[pos]
            wave -= dark_wave
            wave *= fade
            wave += dark_wave
        if strum_s > 0:  # each voice is enveloped, then delayed
            wave *= env
        delay = int(round(v * strum_s * sr))
        if delay == 0:
            total += wave
        elif delay < m:
            total[delay:] += wave[:-delay]
    if strum_s <= 0:
        total *= env
    if timbre.breath > 0 and breath is not None:  # noise, loudest just after each onset
        burst = since * np.float32(-1.0 / 0.03)
        np.exp(burst, out=burst)
        burst *= np.float32(2.0)
        burst += np.float32(0.3)
        burst *= env
        burst *= breath[start:]
        burst *= np.float32(timbre.breath)
        total += burst
    y[start:] = total
    return y


def _drive(y: np.ndarray, drive: float, sr: int) -> np.ndarray:
    """``tanh`` distortion relative to the part's level, then a gentle cabinet low-pass."""
    from scipy import signal  # here, not at the top: SynthSettings alone must import fast
    if drive <= 0:
        return y
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    if rms <= 0:
        return y
    out = np.tanh(y * np.float32(drive / (3.0 * rms)))
    sos = signal.butter(2, min(5500.0, 0.45 * sr), fs=sr, output="sos")
    return signal.sosfilt(sos, out).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Drums
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrumKit:
    """Parameters of a synthesised drum kit (pitches in Hz, decays are time constants in s).

    Attributes
    ----------
    kick_hz, kick_sweep, kick_decay, kick_click : float
        Kick: final pitch, start pitch as a multiple of it, amplitude decay, click level.
    snare_hz, snare_snappy, snare_decay : float
        Snare: shell pitch, level of the noise (wires) and its decay.
    hat_hz, hat_decay, open_decay : float
        Hi-hats: high-pass corner of the noise, closed and open decays.
    cymbal_hz, ride_decay, crash_decay : float
        Ride and crash: lowest partial, decays.
    tom_hz : float
        Tom pitch.
    gain : float
        Overall kit level.
    """

    kick_hz: float = 55.0
    kick_sweep: float = 3.0
    kick_decay: float = 0.12
    kick_click: float = 0.3
    snare_hz: float = 190.0
    snare_snappy: float = 0.8
    snare_decay: float = 0.12
    hat_hz: float = 7000.0
    hat_decay: float = 0.035
    open_decay: float = 0.25
    cymbal_hz: float = 420.0
    ride_decay: float = 0.9
    crash_decay: float = 1.3
    tom_hz: float = 120.0
    gain: float = 1.0


KITS: dict[str, DrumKit] = {
    "acoustic": DrumKit(),
    "rock": DrumKit(kick_hz=52.0, kick_decay=0.15, kick_click=0.5, snare_hz=180.0, snare_snappy=1.0,
                    snare_decay=0.16, hat_hz=6500.0, hat_decay=0.04, crash_decay=1.6),
    "metal": DrumKit(kick_hz=58.0, kick_sweep=4.0, kick_decay=0.07, kick_click=1.2, snare_hz=220.0,
                     snare_snappy=1.1, snare_decay=0.13, hat_hz=7500.0, crash_decay=1.2),
    "jazz": DrumKit(kick_hz=70.0, kick_sweep=2.0, kick_decay=0.18, kick_click=0.1, snare_hz=260.0,
                    snare_snappy=0.6, snare_decay=0.1, hat_hz=6000.0, cymbal_hz=380.0, ride_decay=1.4),
    "brushes": DrumKit(kick_hz=65.0, kick_sweep=1.8, kick_decay=0.15, kick_click=0.05, snare_hz=240.0,
                       snare_snappy=1.4, snare_decay=0.18, hat_hz=5500.0, cymbal_hz=360.0, ride_decay=1.2,
                       gain=0.7),
    "disco": DrumKit(kick_hz=50.0, kick_sweep=3.5, kick_decay=0.2, kick_click=0.4, snare_hz=200.0,
                     snare_snappy=0.9, snare_decay=0.14, hat_hz=8000.0, hat_decay=0.03, open_decay=0.3),
    "boombap": DrumKit(kick_hz=48.0, kick_sweep=3.0, kick_decay=0.25, kick_click=0.6, snare_hz=180.0,
                       snare_snappy=1.3, snare_decay=0.2, hat_hz=6000.0, hat_decay=0.03),
    "808": DrumKit(kick_hz=45.0, kick_sweep=2.5, kick_decay=0.6, kick_click=0.2, snare_hz=230.0,
                   snare_snappy=1.0, snare_decay=0.15, hat_hz=8500.0, hat_decay=0.025),
    "reggae": DrumKit(kick_hz=55.0, kick_sweep=2.5, kick_decay=0.2, kick_click=0.3, snare_hz=330.0,
                      snare_snappy=0.7, snare_decay=0.09, hat_hz=7000.0),
    "pop": DrumKit(kick_hz=52.0, kick_sweep=3.2, kick_decay=0.16, kick_click=0.6, snare_hz=210.0,
                   snare_snappy=1.0, snare_decay=0.15, hat_hz=8000.0, hat_decay=0.03),
}
"""Drum kits by name; templates refer to them."""


def _decay(length: int, sr: int, tau: float, attack: float = 0.0005) -> np.ndarray:
    t = np.arange(length) / sr
    return np.exp(-t / tau) * np.minimum(t / attack, 1.0)


def _band(noise: np.ndarray, lo: float | None, hi: float | None, sr: int) -> np.ndarray:
    from scipy import signal  # here, not at the top: SynthSettings alone must import fast
    hi = None if hi is None else min(hi, 0.45 * sr)
    if lo is not None and hi is not None and lo < hi:
        sos = signal.butter(2, [lo, hi], btype="bandpass", fs=sr, output="sos")
    elif lo is not None:
        sos = signal.butter(2, min(lo, 0.4 * sr), btype="highpass", fs=sr, output="sos")
    else:
        sos = signal.butter(2, hi, btype="lowpass", fs=sr, output="sos")
    return signal.sosfilt(sos, noise)


def _metal(length: int, sr: int, base: float, ratios: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    t = np.arange(length, dtype=np.float32) / np.float32(sr)
    out = np.zeros(length, dtype=np.float32)
    for r in ratios:
        f = base * r
        phase = np.float32(rng.uniform(0, 2 * np.pi))
        if f < 0.45 * sr:
            out += np.sign(np.sin(t * np.float32(2 * np.pi * f) + phase))
    return out / max(len(ratios), 1)


def _kick(rng: np.random.Generator, sr: int, kit: DrumKit) -> np.ndarray:
    length = int(min(4 * kit.kick_decay + 0.05, 1.2) * sr)
    t = np.arange(length) / sr
    f = kit.kick_hz * (1.0 + (kit.kick_sweep - 1.0) * np.exp(-t / 0.03))
    body = np.sin(2 * np.pi * np.cumsum(f) / sr) * _decay(length, sr, kit.kick_decay, 0.001)
    click = _band(rng.standard_normal(length), 1500.0, 6000.0, sr) * _decay(length, sr, 0.004)
    return body + kit.kick_click * click


def _snare(rng: np.random.Generator, sr: int, kit: DrumKit) -> np.ndarray:
    length = int(0.4 * sr)
    t = np.arange(length) / sr
    tone = (np.sin(2 * np.pi * kit.snare_hz * t) + 0.5 * np.sin(2 * np.pi * 1.6 * kit.snare_hz * t))
    tone *= _decay(length, sr, 0.05)
    wires = _band(rng.standard_normal(length), 1200.0, 9000.0, sr) * _decay(length, sr, kit.snare_decay)
    return 0.7 * tone + 1.5 * kit.snare_snappy * wires


def _rim(rng: np.random.Generator, sr: int, kit: DrumKit) -> np.ndarray:
    length = int(0.08 * sr)
    t = np.arange(length) / sr
    tone = np.sin(2 * np.pi * 1.7 * kit.snare_hz * 2 * t) + 0.6 * np.sin(2 * np.pi * 820.0 * t)
    return (tone + 0.5 * _band(rng.standard_normal(length), 2000.0, None, sr)) * _decay(length, sr, 0.012)


def _clap(rng: np.random.Generator, sr: int, kit: DrumKit) -> np.ndarray:
    length = int(0.3 * sr)
    noise = _band(rng.standard_normal(length), 900.0, 3500.0, sr)
    env = np.zeros(length)
    for delay in (0.0, 0.011, 0.022, 0.034):
        d = int(delay * sr)
        env[d:] += _decay(length - d, sr, 0.008 if delay < 0.03 else 0.09)
    return 2.0 * noise * env


def _hat(rng: np.random.Generator, sr: int, kit: DrumKit) -> np.ndarray:
    length = int(min(6 * kit.hat_decay, 0.4) * sr)
    metal = _metal(length, sr, 0.8 * kit.hat_hz / 2, (1.0, 1.34, 1.71, 1.93, 2.5, 2.8), rng)
    noise = _band(rng.standard_normal(length) + 0.5 * metal, kit.hat_hz, None, sr)
    return noise * _decay(length, sr, kit.hat_decay)


def _open_hat(rng: np.random.Generator, sr: int, kit: DrumKit) -> np.ndarray:
    length = int(min(5 * kit.open_decay, 1.5) * sr)
    metal = _metal(length, sr, 0.8 * kit.hat_hz / 2, (1.0, 1.34, 1.71, 1.93, 2.5, 2.8), rng)
    noise = _band(rng.standard_normal(length) + 0.5 * metal, 0.8 * kit.hat_hz, None, sr)
    return 0.8 * noise * _decay(length, sr, kit.open_decay, 0.002)


def _ride(rng: np.random.Generator, sr: int, kit: DrumKit) -> np.ndarray:
    length = int(min(3 * kit.ride_decay, 2.5) * sr)
    bell = _metal(length, sr, kit.cymbal_hz, (1.0, 1.47, 2.09, 2.56, 3.1, 3.93, 5.2, 6.1), rng)
    wash = _band(rng.standard_normal(length), 3000.0, None, sr)
    ping = _band(bell, 2500.0, None, sr) * _decay(length, sr, 0.25 * kit.ride_decay)
    return 0.5 * ping + 0.35 * wash * _decay(length, sr, kit.ride_decay)


def _crash(rng: np.random.Generator, sr: int, kit: DrumKit) -> np.ndarray:
    length = int(min(3 * kit.crash_decay, 3.0) * sr)
    bell = _metal(length, sr, 1.1 * kit.cymbal_hz, (1.0, 1.52, 2.27, 2.9, 3.6, 4.4), rng)
    noise = _band(rng.standard_normal(length) + 0.3 * bell, 2500.0, None, sr)
    return 0.9 * noise * _decay(length, sr, kit.crash_decay, 0.002)


def _tom(rng: np.random.Generator, sr: int, kit: DrumKit) -> np.ndarray:
    length = int(0.5 * sr)
    t = np.arange(length) / sr
    f = kit.tom_hz * (1.0 + 0.5 * np.exp(-t / 0.05))
    return np.sin(2 * np.pi * np.cumsum(f) / sr) * _decay(length, sr, 0.18)


def _brush(rng: np.random.Generator, sr: int, kit: DrumKit) -> np.ndarray:
    length = int(0.3 * sr)
    noise = _band(rng.standard_normal(length), 1500.0, 7000.0, sr)
    t = np.arange(length) / sr
    return 0.8 * noise * np.exp(-t / 0.09) * np.minimum(t / 0.025, 1.0)


def _shaker(rng: np.random.Generator, sr: int, kit: DrumKit) -> np.ndarray:
    length = int(0.12 * sr)
    noise = _band(rng.standard_normal(length), 5000.0, None, sr)
    t = np.arange(length) / sr
    return 0.6 * noise * np.exp(-t / 0.03) * np.minimum(t / 0.01, 1.0)


DRUM_SOUNDS: dict[str, Callable[[np.random.Generator, int, DrumKit], np.ndarray]] = {
    "kick": _kick,
    "snare": _snare,
    "rim": _rim,
    "clap": _clap,
    "hat": _hat,
    "ohat": _open_hat,
    "ride": _ride,
    "crash": _crash,
    "tom": _tom,
    "brush": _brush,
    "shaker": _shaker,
}
"""Drum voices by name (a pattern row names one)."""

_DRUM_GAIN = {"kick": 1.0, "snare": 0.8, "rim": 0.5, "clap": 0.7, "hat": 0.35, "ohat": 0.35, "ride": 0.35,
              "crash": 0.4, "tom": 0.7, "brush": 0.5, "shaker": 0.25}
_VELOCITY = {"x": 1.0, "o": 0.7, "g": 0.35}


@dataclass(frozen=True)
class DrumPattern:
    """A drum groove: one step string per drum voice on a 16th-note grid.

    Attributes
    ----------
    meter : int
        Beats per bar (4 or 3); a bar has ``4 * meter`` steps.
    rows : tuple of (voice, steps)
        ``steps`` spans one or more bars; ``x`` accent, ``o`` normal, ``g`` ghost, ``.`` rest.
    """

    meter: int
    rows: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        for voice, steps in self.rows:
            if voice not in DRUM_SOUNDS:
                raise ValueError(f"unknown drum voice {voice!r}; valid choices: {', '.join(DRUM_SOUNDS)}")
            if len(steps) % (4 * self.meter) or set(steps) - set(_VELOCITY) - {"."}:
                raise ValueError(f"bad step string for {voice!r} in {self.meter}/4: {steps!r}")


def _groove(meter: int = 4, **rows: str) -> DrumPattern:
    return DrumPattern(meter, tuple(rows.items()))


# --------------------------------------------------------------------------------------------
# Bass and comping styles: one bar of (step, length in steps, midi, velocity)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Bar:
    steps: int  # 16ths in the bar
    root: int  # chord root, MIDI in the part's register
    chord: tuple[int, ...]  # chord intervals
    next_root: int  # next bar's chord root in the same register
    scale: tuple[int, ...]  # key scale as pitch classes
    key: int


_BarNotes = list[tuple[int, float, float, float]]


def _bass_root_half(bar: _Bar, rng: np.random.Generator) -> _BarNotes:
    half = bar.steps // 2 if bar.steps % 8 == 0 else bar.steps
    return [(s, half * 0.95, bar.root, 1.0 if s == 0 else 0.8) for s in range(0, bar.steps, half)]


def _bass_root_quarter(bar: _Bar, rng: np.random.Generator) -> _BarNotes:
    return [(s, 3.6, bar.root, 1.0 if s == 0 else 0.8) for s in range(0, bar.steps, 4)]


def _bass_root8(bar: _Bar, rng: np.random.Generator) -> _BarNotes:
    out = [(s, 1.7, bar.root, 1.0 if s % 4 == 0 else 0.8) for s in range(0, bar.steps, 2)]
    if rng.random() < 0.3:  # a passing fifth or octave near the end of the bar
        s, d, _, v = out[-2]
        out[-2] = (s, d, bar.root + int(rng.choice([7, 12])), v)
    return out


def _bass_root16(bar: _Bar, rng: np.random.Generator) -> _BarNotes:
    return [(s, 0.8, bar.root, 1.0 if s % 4 == 0 else 0.75) for s in range(bar.steps)]


def _bass_boom_chick(bar: _Bar, rng: np.random.Generator) -> _BarNotes:
    if bar.steps == 12:
        return [(0, 3.5, bar.root, 1.0)]
    out = [(0, 3.5, bar.root, 1.0), (8, 3.5, bar.root + 7 - (12 if rng.random() < 0.5 else 0), 0.85)]
    if rng.random() < 0.3:  # walk up to the next chord
        out.append((12, 1.8, bar.next_root - 2, 0.7))
        out.append((14, 1.8, bar.next_root - 1, 0.7))
    return out


def _bass_walking(bar: _Bar, rng: np.random.Generator) -> _BarNotes:
    beats = bar.steps // 4
    notes = [bar.root]
    tones = [bar.root + i for i in bar.chord if i < 12] + [bar.root + 12 - 5]
    for _ in range(beats - 2):
        notes.append(int(rng.choice(tones)))
    notes.append(bar.next_root + int(rng.choice([-1, 1, -2])))  # chromatic approach
    return [(4 * i, 3.7, p, 1.0 if i == 0 else 0.85) for i, p in enumerate(notes[:beats])]


def _bass_boogie(bar: _Bar, rng: np.random.Generator) -> _BarNotes:
    figure = (0, 0, 4, 4, 7, 7, 9, 9) if rng.random() < 0.5 else (0, 4, 7, 9, 10, 9, 7, 4)
    return [(2 * i, 1.7, bar.root + figure[i % len(figure)], 1.0 if i % 2 == 0 else 0.75)
            for i in range(bar.steps // 2)]


def _bass_octave(bar: _Bar, rng: np.random.Generator) -> _BarNotes:
    return [(s, 1.4, bar.root + (12 if (s // 2) % 2 else 0), 1.0 if s % 4 == 0 else 0.85)
            for s in range(0, bar.steps, 2)]


_SYNCOPATIONS = ((0, 3, 6, 10), (0, 6, 7, 10, 14), (0, 3, 8, 11, 14), (0, 10, 11), (0, 7, 10))


def _bass_syncopated(bar: _Bar, rng: np.random.Generator) -> _BarNotes:
    steps = [s for s in _SYNCOPATIONS[int(rng.integers(len(_SYNCOPATIONS)))] if s < bar.steps]
    out = []
    for i, s in enumerate(steps):
        end = steps[i + 1] if i + 1 < len(steps) else bar.steps
        pitch = bar.root + (int(rng.choice([0, 0, 0, 7, 12, -2])) if i else 0)
        out.append((s, 0.9 * (end - s), pitch, 1.0 if i == 0 else 0.8))
    return out


def _bass_reggae(bar: _Bar, rng: np.random.Generator) -> _BarNotes:
    steps = sorted(rng.choice([2, 3, 6, 8, 10, 11, 14], size=int(rng.integers(3, 6)), replace=False).tolist())
    steps = [s for s in steps if s < bar.steps]
    tones = [0, 0, 7, 12, bar.chord[1], 10 if bar.chord[1] == 3 else 9]
    out = []
    for i, s in enumerate(steps):
        end = steps[i + 1] if i + 1 < len(steps) else bar.steps
        out.append((s, 0.85 * (end - s), bar.root + int(rng.choice(tones)), 1.0 if s == 8 else 0.85))
    return out


def _bass_arp8(bar: _Bar, rng: np.random.Generator) -> _BarNotes:
    figure = (0, 0, 12, 0, 7, 0, 12, 7)
    return [(s, 1.6, bar.root + figure[(s // 2) % 8], 1.0 if s % 4 == 0 else 0.8) for s in range(0, bar.steps, 2)]


def _bass_pedal(bar: _Bar, rng: np.random.Generator) -> _BarNotes:
    return [(0, bar.steps * 0.98, bar.root, 0.9)]


BASS_STYLES: dict[str, Callable[[_Bar, np.random.Generator], _BarNotes]] = {
    "root_half": _bass_root_half,
    "root_quarter": _bass_root_quarter,
    "root8": _bass_root8,
    "root16": _bass_root16,
    "boom_chick": _bass_boom_chick,
    "walking": _bass_walking,
    "boogie": _bass_boogie,
    "octave": _bass_octave,
    "syncopated": _bass_syncopated,
    "reggae": _bass_reggae,
    "arp8": _bass_arp8,
    "pedal": _bass_pedal,
}
"""Bass-line styles: each writes one bar of notes over the bar's chord."""

# comping styles: one bar of (voice, step, length in steps, velocity)
_CompNotes = list[tuple[int, int, float, float]]


def _comp_pad(steps: int, voices: int, rng: np.random.Generator) -> _CompNotes:
    return [(v, 0, steps * 0.98, 0.8) for v in range(voices)]


def _comp_half(steps: int, voices: int, rng: np.random.Generator) -> _CompNotes:
    half = steps // 2 if steps % 8 == 0 else steps
    return [(v, s, half * 0.95, 0.85) for s in range(0, steps, half) for v in range(voices)]


def _comp_block(steps: int, voices: int, rng: np.random.Generator) -> _CompNotes:
    return [(v, s, 3.5, 1.0 if s == 0 else 0.8) for s in range(0, steps, 4) for v in range(voices)]


def _comp_backbeat(steps: int, voices: int, rng: np.random.Generator) -> _CompNotes:
    beats = range(4, steps, 8) if steps % 8 == 0 else range(4, steps, 4)
    return [(v, s, 2.5, 0.85) for s in beats for v in range(voices)]


def _comp_skank(steps: int, voices: int, rng: np.random.Generator) -> _CompNotes:
    return [(v, s, 1.0, 0.9) for s in range(2, steps, 4) for v in range(voices)]


def _comp_eighths(steps: int, voices: int, rng: np.random.Generator) -> _CompNotes:
    return [(v, s, 1.6, 1.0 if s % 4 == 0 else 0.8) for s in range(0, steps, 2) for v in range(voices)]


_GALLOPS = ("xxxxxxxxxxxxxxxx", "x.xxx.xxx.xxx.xx", "xx.xxx.xxx.xxx.x", "x..xx..xx..xx..x", "x.x.xxx.x.x.xxx.")


def _comp_chug16(steps: int, voices: int, rng: np.random.Generator) -> _CompNotes:
    figure = _GALLOPS[int(rng.integers(len(_GALLOPS)))]
    return [(v, s, 0.7, 1.0 if s % 4 == 0 else 0.8) for s in range(steps) if figure[s % 16] == "x"
            for v in range(voices)]


def _comp_offbeat16(steps: int, voices: int, rng: np.random.Generator) -> _CompNotes:
    return [(v, s, 0.5, 1.0 if s % 4 == 2 else 0.45) for s in range(steps) for v in range(voices)]


def _comp_arpeggio(steps: int, voices: int, rng: np.random.Generator) -> _CompNotes:
    order = (0, 1, 2, 3, 2, 1, 0, 2) if voices > 3 else (0, 1, 2, 1)
    return [(order[i % len(order)] % voices, s, 5.0, 0.9 if s % 4 == 0 else 0.7)
            for i, s in enumerate(range(0, steps, 2))]


def _comp_charleston(steps: int, voices: int, rng: np.random.Generator) -> _CompNotes:
    choices = [s for s in (0, 4, 6, 10, 12, 14) if s < steps]
    hits = sorted(rng.choice(choices, size=int(rng.integers(1, 4)), replace=False).tolist())
    lengths = rng.choice([1.5, 3.0, 5.0], size=len(hits))
    return [(v, s, float(d), 0.85) for s, d in zip(hits, lengths) for v in range(voices)]


def _comp_stab(steps: int, voices: int, rng: np.random.Generator) -> _CompNotes:
    hits = [(0, 5.0), (6, 3.0), (10, 4.0)] if rng.random() < 0.5 else [(0, 9.0), (10, 5.0)]
    return [(v, s, d, 0.85) for s, d in hits if s < steps for v in range(voices)]


COMP_STYLES: dict[str, Callable[[int, int, np.random.Generator], _CompNotes]] = {
    "pad": _comp_pad,
    "half": _comp_half,
    "block": _comp_block,
    "backbeat": _comp_backbeat,
    "skank": _comp_skank,
    "eighths": _comp_eighths,
    "chug16": _comp_chug16,
    "offbeat16": _comp_offbeat16,
    "arpeggio": _comp_arpeggio,
    "charleston": _comp_charleston,
    "stab": _comp_stab,
}
"""Comping (chord rhythm) styles: each writes one bar of ``(voice, step, length, velocity)``."""


# --------------------------------------------------------------------------------------------
# Genre templates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenreTemplate:
    """Everything that characterises a genre; artists and tracks draw their choices from it.

    Ranges are ``(low, high)`` and drawn uniformly; tuples of names are choices (repeat a
    name to weight it).

    Attributes
    ----------
    tempo_bpm : (float, float)
        Tempo range in beats per minute.
    meters : tuple of int
        Beats per bar (4 for 4/4, 3 for 3/4).
    swing : (float, float)
        How far off-beat notes are delayed, as a fraction of the swing unit (1/3: triplets).
    swing_unit : int
        8 (eighth-note swing, shuffles) or 16 (sixteenth-note swing).
    grooves : tuple of DrumPattern
        Drum grooves (none: no drums).
    kits : tuple of str
        Names in :data:`KITS`.
    humanise_ms : float
        Standard deviation of the timing jitter of drums and instruments (ms).
    fill_prob : float
        Chance of a drum fill at the end of a section.
    progressions : tuple of str
        Chord progressions in Roman numerals, one chord per bar, ``"mode: I IV V I"``.
    power_chords : float
        Chance that an artist plays every chord as a power chord.
    comp_styles, harmony_timbres : tuple of str
        Names in :data:`COMP_STYLES` and :data:`TIMBRES` for the ``other`` stem.
    harmony_register : int
        MIDI note around which chords are voiced.
    bass_styles, bass_timbres : tuple of str
        Names in :data:`BASS_STYLES` and :data:`TIMBRES`.
    lead_timbres : tuple of str
        Names in :data:`TIMBRES` for the lead (``vocals`` stem).
    major_scales, minor_scales : tuple of str
        Names in :data:`SCALES` for the lead over major and minor progressions.
    lead_register : (int, int)
        MIDI range of the lead's tonic.
    lead_density : (float, float)
        Chance of a lead note on each grid step.
    lead_grid : int
        Lead rhythm grid in 16ths (2: eighths, 1: sixteenths).
    vibrato_cents : (float, float)
        Lead vibrato depth.
    lead_presence : float
        Chance that the lead plays in a section.
    levels_db : (float, float, float, float)
        RMS levels of drums, bass, vocals and other in dB (before per-artist and per-track
        variation).
    reverb : (float, float)
        Wet level of the room reverb on vocals and other.
    dynamics_db : (float, float)
        Depth of the slow loudness swells.
    noise_db : (float, float)
        Noise floor relative to the mix RMS (dB).
    lofi_prob : float
        Chance that a track is band-limited like an old or sampled recording.
    treble_db, bass_db : (float, float)
        Gain of the production's high shelf (above 3 kHz) and low shelf (below 150 Hz), dB.
    """

    tempo_bpm: tuple[float, float]
    meters: tuple[int, ...]
    swing: tuple[float, float]
    swing_unit: int
    grooves: tuple[DrumPattern, ...]
    kits: tuple[str, ...]
    humanise_ms: float
    fill_prob: float
    progressions: tuple[str, ...]
    power_chords: float
    comp_styles: tuple[str, ...]
    harmony_timbres: tuple[str, ...]
    harmony_register: int
    bass_styles: tuple[str, ...]
    bass_timbres: tuple[str, ...]
    lead_timbres: tuple[str, ...]
    major_scales: tuple[str, ...]
    minor_scales: tuple[str, ...]
    lead_register: tuple[int, int]
    lead_density: tuple[float, float]
    lead_grid: int
    vibrato_cents: tuple[float, float]
    lead_presence: float
    levels_db: tuple[float, float, float, float]
    reverb: tuple[float, float]
    dynamics_db: tuple[float, float]
    noise_db: tuple[float, float]
    lofi_prob: float
    treble_db: tuple[float, float] = (0.0, 0.0)
    bass_db: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        registries = (
            ("kits", self.kits, KITS),
            ("comp_styles", self.comp_styles, COMP_STYLES),
            ("harmony_timbres", self.harmony_timbres, TIMBRES),
            ("bass_styles", self.bass_styles, BASS_STYLES),
            ("bass_timbres", self.bass_timbres, TIMBRES),
            ("lead_timbres", self.lead_timbres, TIMBRES),
            ("major_scales", self.major_scales, SCALES),
            ("minor_scales", self.minor_scales, SCALES),
        )
        for name, values, registry in registries:
            bad = [v for v in values if v not in registry]
            if bad:
                raise ValueError(f"{name}: unknown {bad}; valid choices: {', '.join(registry)}")
        for text in self.progressions:
            _parse_progression(text)
        if not set(self.meters) <= {3, 4}:
            raise ValueError(f"meters must be 3 or 4, got {self.meters}")
        if self.grooves and not set(self.meters) <= {g.meter for g in self.grooves}:
            raise ValueError(f"no groove for some of the meters {self.meters}")


_BACKBEAT = "....x.......x..."
_EIGHTHS = "x.x.x.x.x.x.x.x."

TEMPLATES: dict[str, GenreTemplate] = {
    "blues": GenreTemplate(
        tempo_bpm=(60, 130), meters=(4,), swing=(0.2, 0.33), swing_unit=8,
        grooves=(
            _groove(kick="x.......x.......", snare=_BACKBEAT, hat=_EIGHTHS),
            _groove(kick="x.....x.x.......", snare="....x.......x..g", hat=_EIGHTHS),
            _groove(kick="x.......x.......", snare=_BACKBEAT, ride="x.xxx.xxx.xxx.xx"),
        ),
        kits=("acoustic", "rock", "acoustic", "jazz"), humanise_ms=9.0, fill_prob=0.3,
        progressions=(
            "major: I7 IV7 I7 I7 IV7 IV7 I7 I7 V7 IV7 I7 V7",
            "major: I7 I7 I7 I7 IV7 IV7 I7 I7 V7 IV7 I7 I7",
            "minor: i7 i7 i7 i7 iv7 iv7 i7 i7 bVI7 V7 i7 V7",
            "major: I7 IV7 I7 V7",
        ),
        power_chords=0.1, comp_styles=("block", "backbeat", "pad", "charleston", "eighths"),
        harmony_timbres=("clean_guitar", "organ", "piano", "crunch_guitar", "clean_guitar"), harmony_register=57,
        bass_styles=("walking", "boogie", "boogie", "root_quarter"),
        bass_timbres=("bass_finger", "bass_upright", "bass_pick"),
        lead_timbres=("voice", "voice_breathy", "lead_guitar", "harmonica", "harmonica"),
        major_scales=("blues", "minor_pent", "major_pent", "mixolydian"), minor_scales=("blues", "minor_pent"),
        lead_register=(52, 67), lead_density=(0.3, 0.6), lead_grid=2, vibrato_cents=(15, 40),
        lead_presence=0.75, levels_db=(-2.0, -4.0, -1.0, -3.0), reverb=(0.1, 0.35), dynamics_db=(2, 6),
        noise_db=(-40, -27), lofi_prob=0.55,
        treble_db=(-8.0, 0.0), bass_db=(-2.0, 2.0),
    ),
    "classical": GenreTemplate(
        tempo_bpm=(50, 140), meters=(4, 4, 3), swing=(0.0, 0.0), swing_unit=16, grooves=(), kits=(),
        humanise_ms=12.0, fill_prob=0.0,
        progressions=(
            "major: I IV V I", "major: I vi IV V", "major: I V vi iii IV I IV V", "minor: i iv V i",
            "minor: i VI iv V", "major: I ii7 V7 I", "minor: i iv bVI V", "major: I IV ii V7",
        ),
        power_chords=0.0, comp_styles=("pad", "arpeggio", "block", "half", "arpeggio"),
        harmony_timbres=("strings", "piano", "organ", "woodwinds", "strings", "piano"), harmony_register=60,
        bass_styles=("pedal", "root_half", "root_quarter"), bass_timbres=("cello", "bass_upright", "cello"),
        lead_timbres=("violin", "flute", "woodwinds", "voice", "violin"),
        major_scales=("major",), minor_scales=("harmonic_minor", "minor"),
        lead_register=(62, 79), lead_density=(0.3, 0.7), lead_grid=2, vibrato_cents=(10, 35),
        lead_presence=0.7, levels_db=(-60.0, -7.0, -3.0, 0.0), reverb=(0.35, 0.7), dynamics_db=(6, 16),
        noise_db=(-50, -32), lofi_prob=0.3,
        treble_db=(-6.0, 0.0), bass_db=(-3.0, 1.0),
    ),
    "country": GenreTemplate(
        tempo_bpm=(85, 175), meters=(4, 4, 4, 3), swing=(0.0, 0.12), swing_unit=8,
        grooves=(
            _groove(kick="x.......x.......", snare=_BACKBEAT, hat=_EIGHTHS),
            _groove(kick="x.......x.......", snare="g.o.g.x.g.o.g.x.", hat="x...x...x...x..."),
            _groove(kick="x.......x.......", brush=_EIGHTHS, snare=_BACKBEAT),
            _groove(3, kick="x...........", snare="....o...o...", hat="x.x.x.x.x.x."),
        ),
        kits=("acoustic", "brushes", "pop"), humanise_ms=7.0, fill_prob=0.25,
        progressions=(
            "major: I IV V I", "major: I I IV V", "major: I V IV I", "major: I IV I V", "major: I vi IV V",
            "major: I7 IV V I",
        ),
        power_chords=0.05, comp_styles=("block", "backbeat", "eighths", "arpeggio"),
        harmony_timbres=("acoustic_guitar", "twang_guitar", "piano", "clean_guitar", "acoustic_guitar"),
        harmony_register=58, bass_styles=("boom_chick", "boom_chick", "root_half"),
        bass_timbres=("bass_finger", "bass_upright", "bass_pick"),
        lead_timbres=("voice_nasal", "voice_nasal", "voice", "violin", "steel"),
        major_scales=("major_pent", "major"), minor_scales=("minor", "minor_pent"),
        lead_register=(55, 72), lead_density=(0.35, 0.6), lead_grid=2, vibrato_cents=(10, 30),
        lead_presence=0.8, levels_db=(-3.0, -4.0, 0.0, -2.0), reverb=(0.1, 0.3), dynamics_db=(1, 4),
        noise_db=(-55, -38), lofi_prob=0.2,
        treble_db=(-2.0, 3.0), bass_db=(-2.0, 1.0),
    ),
    "disco": GenreTemplate(
        tempo_bpm=(108, 132), meters=(4,), swing=(0.0, 0.05), swing_unit=16,
        grooves=(
            _groove(kick="x...x...x...x...", snare=_BACKBEAT, hat=_EIGHTHS, ohat="..x...x...x...x."),
            _groove(kick="x...x...x...x...", clap=_BACKBEAT, hat="xxxxxxxxxxxxxxxx", ohat="..x...x...x...x."),
            _groove(kick="x...x...x...x...", snare=_BACKBEAT, ohat="..x...x...x...x.", shaker="xxxxxxxxxxxxxxxx"),
        ),
        kits=("disco", "pop"), humanise_ms=3.0, fill_prob=0.2,
        progressions=(
            "minor: i7 iv7 i7 iv7", "minor: i9 i9 iv9 iv9", "major: Imaj7 IVmaj7 Imaj7 IVmaj7",
            "minor: i bVII bVI bVII", "major: ii7 V7 Imaj7 vi7",
        ),
        power_chords=0.0, comp_styles=("pad", "offbeat16", "stab", "block", "pad"),
        harmony_timbres=("strings", "clean_guitar", "epiano", "pad", "brass", "strings"), harmony_register=62,
        bass_styles=("octave", "octave", "syncopated"), bass_timbres=("bass_finger", "bass_synth", "bass_pick"),
        lead_timbres=("voice", "voice_breathy", "synth_lead", "brass", "voice"),
        major_scales=("major", "major_pent"), minor_scales=("dorian", "minor", "minor_pent"),
        lead_register=(60, 76), lead_density=(0.45, 0.7), lead_grid=2, vibrato_cents=(15, 35),
        lead_presence=0.75, levels_db=(0.0, -2.0, -2.0, -3.0), reverb=(0.1, 0.3), dynamics_db=(0, 2),
        noise_db=(-60, -45), lofi_prob=0.15,
        treble_db=(0.0, 4.0), bass_db=(0.0, 4.0),
    ),
    "hiphop": GenreTemplate(
        tempo_bpm=(78, 100), meters=(4,), swing=(0.1, 0.3), swing_unit=16,
        grooves=(
            _groove(kick="x.....x...x.....", snare=_BACKBEAT, hat=_EIGHTHS),
            _groove(kick="x..x......x.x...", snare=_BACKBEAT, hat="x.xxx.xxx.xxx.xx"),
            _groove(kick="x.....x.x.....x.x.x.......x.....", clap=_BACKBEAT * 2, hat=_EIGHTHS * 2),
        ),
        kits=("boombap", "808", "boombap"), humanise_ms=4.0, fill_prob=0.05,
        progressions=(
            "minor: i i iv iv", "minor: i7 i7 i7 i7", "minor: i bVI i bVI", "minor: i7 iv7 i7 v7",
            "major: Imaj7 ii7 Imaj7 ii7", "minor: i9 bVII i9 bVII",
        ),
        power_chords=0.0, comp_styles=("stab", "pad", "charleston", "arpeggio"),
        harmony_timbres=("epiano", "piano", "pad", "strings", "brass"), harmony_register=60,
        bass_styles=("syncopated", "syncopated", "root_half"), bass_timbres=("bass_808", "bass_synth", "bass_finger"),
        lead_timbres=("rap",), major_scales=("major_pent",), minor_scales=("minor_pent",),
        lead_register=(45, 55), lead_density=(0.55, 0.85), lead_grid=1, vibrato_cents=(0, 5),
        lead_presence=0.9, levels_db=(1.0, 0.0, 2.0, -8.0), reverb=(0.0, 0.12), dynamics_db=(0, 2),
        noise_db=(-45, -30), lofi_prob=0.45,
        treble_db=(-5.0, 0.0), bass_db=(3.0, 8.0),
    ),
    "jazz": GenreTemplate(
        tempo_bpm=(90, 240), meters=(4, 4, 4, 3), swing=(0.2, 0.33), swing_unit=8,
        grooves=(
            _groove(ride="x...x.x.x...x.x.", hat="....x.......x...", kick="g...g...g...g...", snare="..........g....."),
            _groove(brush="x.x.x.x.x.x.x.x.", hat="....x.......x...", kick="g.......g......."),
            _groove(ride="x...x.x.x...x.x.", hat="....x.......x...", snare="......g.....g..."),
            _groove(3, ride="x...x.x.x...", hat="....x...x...", kick="g..........."),
        ),
        kits=("jazz", "brushes"), humanise_ms=10.0, fill_prob=0.15,
        progressions=(
            "major: ii7 V7 Imaj7 Imaj7", "major: Imaj7 vi7 ii7 V7", "minor: iim7b5 V7 i7 i7",
            "major: iii7 vi7 ii7 V7", "major: Imaj7 IVmaj7 iii7 VI7 ii7 V7 Imaj7 Imaj7", "minor: i7 iv7 i7 V7",
        ),
        power_chords=0.0, comp_styles=("charleston", "charleston", "block", "pad"),
        harmony_timbres=("piano", "epiano", "clean_guitar", "organ", "piano"), harmony_register=60,
        bass_styles=("walking", "walking", "root_half"), bass_timbres=("bass_upright", "bass_upright", "bass_finger"),
        lead_timbres=("sax", "trumpet", "voice", "sax", "trumpet"),
        major_scales=("major", "mixolydian", "major_pent"), minor_scales=("dorian", "minor", "blues"),
        lead_register=(58, 74), lead_density=(0.45, 0.8), lead_grid=2, vibrato_cents=(10, 30),
        lead_presence=0.8, levels_db=(-4.0, -2.0, -1.0, -2.0), reverb=(0.15, 0.4), dynamics_db=(3, 8),
        noise_db=(-50, -32), lofi_prob=0.4,
        treble_db=(-6.0, 0.0), bass_db=(-2.0, 2.0),
    ),
    "metal": GenreTemplate(
        tempo_bpm=(100, 200), meters=(4,), swing=(0.0, 0.0), swing_unit=16,
        grooves=(
            _groove(kick="xxxxxxxxxxxxxxxx", snare=_BACKBEAT, crash="o.o.o.o.o.o.o.o."),
            _groove(kick="x.xxx.xxx.xxx.xx", snare=_BACKBEAT, ride=_EIGHTHS),
            _groove(kick=_EIGHTHS, snare="..x...x...x...x.", hat=_EIGHTHS),
            _groove(kick="x..x..x.x.......", snare="........x.......", crash="o.o.o.o.o.o.o.o."),
            _groove(kick="x.......x.x.....", snare=_BACKBEAT, hat=_EIGHTHS),
        ),
        kits=("metal", "rock"), humanise_ms=3.0, fill_prob=0.35,
        progressions=(
            "minor: i bVI bVII i", "minor: i i bII i", "minor: i bVII bVI V", "minor: i iv bVI V",
            "minor: i i bVI bVII",
        ),
        power_chords=0.9, comp_styles=("chug16", "chug16", "eighths", "pad"),
        harmony_timbres=("dist_guitar", "dist_guitar", "crunch_guitar"), harmony_register=50,
        bass_styles=("root16", "root8"), bass_timbres=("bass_pick", "bass_dist"),
        lead_timbres=("scream", "voice", "lead_guitar", "scream"),
        major_scales=("minor_pent",), minor_scales=("minor", "phrygian", "harmonic_minor", "minor_pent"),
        lead_register=(52, 69), lead_density=(0.4, 0.7), lead_grid=2, vibrato_cents=(10, 40),
        lead_presence=0.7, levels_db=(0.0, -4.0, -3.0, 0.0), reverb=(0.05, 0.2), dynamics_db=(0, 2),
        noise_db=(-60, -45), lofi_prob=0.1,
        treble_db=(1.0, 5.0), bass_db=(-1.0, 3.0),
    ),
    "pop": GenreTemplate(
        tempo_bpm=(85, 130), meters=(4,), swing=(0.0, 0.08), swing_unit=16,
        grooves=(
            _groove(kick="x.......x.x.....", snare=_BACKBEAT, hat=_EIGHTHS),
            _groove(kick="x...x...x...x...", clap=_BACKBEAT, hat="..x...x...x...x."),
            _groove(kick="x..x..x...x.....", snare=_BACKBEAT, shaker="xxxxxxxxxxxxxxxx"),
            _groove(kick="x.......x.......", clap=_BACKBEAT, hat="x.xxx.xxx.xxx.xx"),
        ),
        kits=("pop", "disco", "808", "acoustic"), humanise_ms=3.0, fill_prob=0.2,
        progressions=(
            "major: I V vi IV", "major: vi IV I V", "major: I vi IV V", "major: IV I V vi", "minor: i bVI bIII bVII",
            "major: I IV vi V",
        ),
        power_chords=0.1, comp_styles=("pad", "arpeggio", "block", "eighths", "offbeat16"),
        harmony_timbres=("pad", "piano", "synth_pluck", "acoustic_guitar", "epiano", "strings"), harmony_register=62,
        bass_styles=("root8", "arp8", "syncopated", "octave"), bass_timbres=("bass_synth", "bass_finger", "bass_pick"),
        lead_timbres=("voice", "voice_breathy", "synth_lead", "voice"),
        major_scales=("major", "major_pent"), minor_scales=("minor", "minor_pent"),
        lead_register=(60, 76), lead_density=(0.4, 0.7), lead_grid=2, vibrato_cents=(10, 30),
        lead_presence=0.9, levels_db=(-1.0, -3.0, 1.5, -3.0), reverb=(0.1, 0.3), dynamics_db=(0, 3),
        noise_db=(-62, -48), lofi_prob=0.1,
        treble_db=(1.0, 5.0), bass_db=(0.0, 4.0),
    ),
    "reggae": GenreTemplate(
        tempo_bpm=(60, 90), meters=(4,), swing=(0.05, 0.25), swing_unit=16,
        grooves=(
            _groove(kick="........x.......", rim="........x.......", hat=_EIGHTHS),
            _groove(kick="........x.......", rim="........x.......", hat="x.xxx.xxx.xxx.xx"),
            _groove(kick="x...x...x...x...", rim="........x.......", hat="..x...x...x...x."),
            _groove(kick="x.......x.......", snare=_BACKBEAT, hat=_EIGHTHS),
        ),
        kits=("reggae", "acoustic"), humanise_ms=6.0, fill_prob=0.2,
        progressions=(
            "major: I IV I IV", "major: I V IV V", "minor: i iv i iv", "minor: i bVII i bVII", "major: I vi IV V",
            "minor: i7 iv7 i7 iv7",
        ),
        power_chords=0.0, comp_styles=("skank", "skank", "backbeat", "offbeat16"),
        harmony_timbres=("clean_guitar", "organ", "piano", "epiano"), harmony_register=62,
        bass_styles=("reggae", "reggae", "root_half"), bass_timbres=("bass_finger", "bass_synth", "bass_808"),
        lead_timbres=("voice", "voice_breathy", "brass", "voice_nasal"),
        major_scales=("major_pent", "major"), minor_scales=("minor_pent", "dorian"),
        lead_register=(57, 72), lead_density=(0.35, 0.6), lead_grid=2, vibrato_cents=(10, 25),
        lead_presence=0.8, levels_db=(-2.0, 1.0, -1.0, -4.0), reverb=(0.1, 0.35), dynamics_db=(0, 3),
        noise_db=(-55, -36), lofi_prob=0.3,
        treble_db=(-4.0, 1.0), bass_db=(2.0, 7.0),
    ),
    "rock": GenreTemplate(
        tempo_bpm=(95, 165), meters=(4,), swing=(0.0, 0.05), swing_unit=8,
        grooves=(
            _groove(kick="x.......x.x.....", snare=_BACKBEAT, hat=_EIGHTHS),
            _groove(kick="x.x.....x.x.....", snare=_BACKBEAT, ride=_EIGHTHS),
            _groove(kick="x.......x.......", snare=_BACKBEAT, hat="xxxxxxxxxxxxxxxx"),
            _groove(kick="x...x...x...x...", snare=_BACKBEAT, crash="o.o.o.o.o.o.o.o."),
        ),
        kits=("rock", "acoustic", "pop"), humanise_ms=5.0, fill_prob=0.35,
        progressions=(
            "major: I bVII IV I", "major: I IV V IV", "major: I V IV I", "minor: i bVII bVI bVII", "major: I IV I V",
            "minor: i bIII bVII IV",
        ),
        power_chords=0.35, comp_styles=("eighths", "eighths", "block", "chug16", "pad", "arpeggio"),
        harmony_timbres=("crunch_guitar", "dist_guitar", "clean_guitar", "acoustic_guitar", "crunch_guitar"),
        harmony_register=55, bass_styles=("root8", "root8", "root_quarter"),
        bass_timbres=("bass_pick", "bass_finger", "bass_dist"),
        lead_timbres=("voice", "voice_nasal", "lead_guitar", "voice"),
        major_scales=("major_pent", "mixolydian", "minor_pent", "major"), minor_scales=("minor_pent", "minor", "blues"),
        lead_register=(55, 71), lead_density=(0.4, 0.65), lead_grid=2, vibrato_cents=(10, 35),
        lead_presence=0.8, levels_db=(0.0, -3.0, -1.0, -1.0), reverb=(0.05, 0.25), dynamics_db=(0, 3),
        noise_db=(-58, -42), lofi_prob=0.15,
        treble_db=(-1.0, 4.0), bass_db=(-1.0, 3.0),
    ),
}
"""The genre templates, keyed by GTZAN genre name (in :data:`genrelab.GENRES` order)."""


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthSettings:
    """Settings of the synthetic dataset.

    Attributes
    ----------
    n_tracks_per_genre : int > 0
        Tracks rendered per genre.
    duration_s : float > 0
        Length of every track in seconds.
    sample_rate : int >= 8000
        Sample rate in Hz.
    tracks_per_artist : int > 0
        Consecutive tracks of a genre that share an artist (the last artist of a genre has
        fewer when ``n_tracks_per_genre`` is not a multiple).
    seed : int >= 0
        Root seed of every track and artist.
    genres : tuple of str
        Genres to render, a subset of :data:`TEMPLATES`.

    Raises
    ------
    ValueError
        On a non-positive count or length, a negative seed, or an unknown genre (the message
        lists the valid choices).
    """

    n_tracks_per_genre: int = 30
    duration_s: float = 30.0
    sample_rate: int = 22050
    tracks_per_artist: int = 3
    seed: int = 0
    genres: tuple[str, ...] = GENRES

    def __post_init__(self) -> None:
        for name in ("n_tracks_per_genre", "tracks_per_artist"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.sample_rate, (int, np.integer)) or self.sample_rate < 8000:
            raise ValueError(f"sample_rate must be an integer >= 8000 Hz, got {self.sample_rate!r}")
        if not (isinstance(self.duration_s, (int, float)) and math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"duration_s must be a positive number of seconds, got {self.duration_s!r}")
        if round(self.duration_s * self.sample_rate) < 1:
            raise ValueError(f"duration_s={self.duration_s} holds no sample at {self.sample_rate} Hz")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if isinstance(self.genres, str):
            raise ValueError(f"genres must be a list of names, got the string {self.genres!r}; "
                             f"valid choices: {', '.join(TEMPLATES)}")
        genres = tuple(self.genres)
        valid = ", ".join(TEMPLATES)
        unknown = [g for g in genres if g not in TEMPLATES]
        if unknown:
            raise ValueError(f"genres: unknown {unknown}; valid choices: {valid}")
        if not genres:
            raise ValueError(f"genres must name at least one genre; valid choices: {valid}")
        if len(set(genres)) != len(genres):
            raise ValueError(f"genres must be distinct, got {list(genres)}; valid choices: {valid}")
        object.__setattr__(self, "genres", genres)

    @property
    def n_samples(self) -> int:
        """Samples per track, ``round(duration_s * sample_rate)``."""
        return int(round(self.duration_s * self.sample_rate))


def track_id(genre: str, track_index: int) -> str:
    """The id of a track, GTZAN-style: ``track_id('blues', 3) == 'blues.00003'``."""
    return f"{genre}.{track_index:05d}"


def artist_id(genre: str, track_index: int, tracks_per_artist: int) -> str:
    """The artist of a track: ``artist_id('blues', 10, 3) == 'blues_artist03'``."""
    return f"{genre}_artist{track_index // tracks_per_artist:02d}"


# --------------------------------------------------------------------------------------------
# Artist style and track rendering
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Artist:
    """What an artist keeps across its tracks."""

    tempo: float
    key: int
    meter: int
    swing: float
    grooves: tuple[DrumPattern, ...]
    kit: DrumKit
    progressions: tuple[str, ...]
    power_chords: bool
    comp: str
    harmony: str
    harmony_register: int
    bass_style: str
    bass_timbre: str
    lead: str
    lead_register: int
    lead_density: float
    vibrato: float
    formant_shift: float
    rolloff_shift: tuple[float, float, float]
    drive: float
    levels_db: np.ndarray
    reverb: float
    noise_db: float
    lofi: float
    treble_db: float
    bass_db: float


def _pick(rng: np.random.Generator, options: Sequence) -> object:
    return options[int(rng.integers(len(options)))]


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _draw_artist(tpl: GenreTemplate, rng: np.random.Generator) -> _Artist:
    """Draw the style an artist keeps across its tracks."""
    meter = int(_pick(rng, tpl.meters))
    grooves = tuple(g for g in tpl.grooves if g.meter == meter)
    if grooves:
        chosen = rng.choice(len(grooves), size=min(2, len(grooves)), replace=False)
        grooves = tuple(grooves[int(i)] for i in chosen)
    if tpl.kits:
        base = KITS[str(_pick(rng, tpl.kits))]
        jitter = {f.name: getattr(base, f.name) * float(rng.uniform(0.85, 1.15)) for f in dataclasses.fields(base)}
        kit = DrumKit(**jitter)
    else:
        kit = DrumKit(gain=0.0)
    chosen = rng.choice(len(tpl.progressions), size=min(2, len(tpl.progressions)), replace=False)
    return _Artist(
        tempo=_uniform(rng, tpl.tempo_bpm),
        key=int(rng.integers(12)),
        meter=meter,
        swing=_uniform(rng, tpl.swing),
        grooves=grooves,
        kit=kit,
        progressions=tuple(tpl.progressions[int(i)] for i in chosen),
        power_chords=bool(rng.random() < tpl.power_chords),
        comp=str(_pick(rng, tpl.comp_styles)),
        harmony=str(_pick(rng, tpl.harmony_timbres)),
        harmony_register=tpl.harmony_register + int(rng.integers(-3, 4)),
        bass_style=str(_pick(rng, tpl.bass_styles)),
        bass_timbre=str(_pick(rng, tpl.bass_timbres)),
        lead=str(_pick(rng, tpl.lead_timbres)),
        lead_register=int(rng.integers(tpl.lead_register[0], tpl.lead_register[1] + 1)),
        lead_density=_uniform(rng, tpl.lead_density),
        vibrato=_uniform(rng, tpl.vibrato_cents),
        formant_shift=float(rng.uniform(0.9, 1.25)),
        rolloff_shift=tuple(float(x) for x in rng.uniform(-0.15, 0.15, size=3)),
        drive=float(rng.uniform(0.75, 1.3)),
        levels_db=np.asarray(tpl.levels_db) + rng.normal(0.0, 1.5, size=4),
        reverb=_uniform(rng, tpl.reverb),
        noise_db=_uniform(rng, tpl.noise_db),
        lofi=float(rng.random() < tpl.lofi_prob) * float(rng.uniform(3500.0, 8000.0)),
        treble_db=_uniform(rng, tpl.treble_db),
        bass_db=_uniform(rng, tpl.bass_db),
    )


@dataclass(frozen=True)
class _Context:
    """Per-track constants shared by the part renderers."""

    n: int
    sr: int
    sample_index: np.ndarray  # int32 [0, n)
    time: np.ndarray  # float32 seconds


@dataclass(frozen=True)
class _Grid:
    """Where a 16th-note step of a bar falls in time, with swing."""

    bpm: float
    meter: int
    swing: float
    swing_unit: int
    start_s: float

    @property
    def step_s(self) -> float:
        return 15.0 / self.bpm

    @property
    def steps(self) -> int:
        return 4 * self.meter

    def time(self, bar: int, step: np.ndarray | float) -> np.ndarray:
        step = np.asarray(step, dtype=np.float64)
        t = self.start_s + (bar * self.steps + step) * self.step_s
        within = np.mod(np.floor(step), 4)
        if self.swing_unit == 8:
            delay = np.where(within == 2, 2.0, np.where(within == 3, 1.0, 0.0))
        else:
            delay = np.where(within % 2 == 1, 1.0, 0.0)
        return t + self.swing * delay * self.step_s


@dataclass(frozen=True)
class _Form:
    """The song's bars: a chord per bar, grouped into sections with their own arrangement."""

    n_bars: int
    section_bars: int
    chords: tuple[tuple[int, str], ...]  # per bar, root relative to the key
    mode: str
    lead_on: tuple[bool, ...]  # per section
    groove: tuple[int, ...]  # per section
    energy: tuple[float, ...]  # per section
    fill: tuple[bool, ...]  # per section


def _draw_form(tpl: GenreTemplate, artist: _Artist, grid: _Grid, duration_s: float,
               rng: np.random.Generator) -> _Form:
    """Draw a track's progression and the arrangement of its sections."""
    text = (str(_pick(rng, artist.progressions)) if rng.random() < 0.8 else str(_pick(rng, tpl.progressions)))
    mode, prog = _parse_progression(text)
    section = len(prog) * max(1, 8 // len(prog)) if len(prog) < 8 else len(prog)
    n_bars = int(math.ceil((duration_s - grid.start_s) / (grid.steps * grid.step_s))) + 1
    chords = tuple(prog[b % len(prog)] for b in range(n_bars))
    if artist.power_chords:
        chords = tuple((root, "5") for root, _ in chords)
    n_sections = n_bars // section + 1
    n_grooves = max(len(artist.grooves), 1)
    return _Form(
        n_bars=n_bars,
        section_bars=section,
        chords=chords,
        mode=mode,
        lead_on=tuple(bool(x) for x in rng.random(n_sections) < tpl.lead_presence),
        groove=tuple(int(x) for x in rng.integers(n_grooves, size=n_sections)),
        energy=tuple(float(x) for x in rng.uniform(0.75, 1.0, size=n_sections)),
        fill=tuple(bool(x) for x in rng.random(n_sections) < tpl.fill_prob),
    )


def _place(out: np.ndarray, sample: np.ndarray, positions: np.ndarray, gains: np.ndarray) -> None:
    """Add ``sample`` into ``out`` at each position, scaled by its gain (in place)."""
    n = len(out)
    for p, g in zip(positions.tolist(), gains.tolist()):
        if 0 <= p < n:
            m = min(len(sample), n - p)
            out[p : p + m] += g * sample[:m]


def _render_drums(tpl: GenreTemplate, artist: _Artist, grid: _Grid, form: _Form, ctx: _Context,
                  rng: np.random.Generator) -> np.ndarray:
    """The ``drums`` stem: the artist's grooves bar by bar, with fills and crashes at section starts."""
    out = np.zeros(ctx.n, dtype=np.float64)
    if not artist.grooves:
        return out.astype(np.float32)
    sr = ctx.sr
    hits: dict[str, tuple[list, list]] = {}

    def add(voice: str, bar: int, steps: np.ndarray, vel: np.ndarray) -> None:
        times = grid.time(bar, steps) + rng.normal(0.0, tpl.humanise_ms / 1000.0, size=len(steps))
        gains = vel * rng.uniform(0.88, 1.0, size=len(steps))
        pos, gain = hits.setdefault(voice, ([], []))
        pos.append(np.round(times * sr).astype(np.int64))
        gain.append(gains)

    rows_cache = {}
    for g in artist.grooves:
        rows_cache[g] = [(voice, np.array([i for i, c in enumerate(s) if c != "."]),
                          np.array([_VELOCITY[c] for c in s if c != "."]), len(s)) for voice, s in g.rows]
    steps = grid.steps
    for bar in range(form.n_bars):
        sec = bar // form.section_bars
        groove = artist.grooves[form.groove[sec] % len(artist.grooves)]
        energy = form.energy[sec]
        last_of_section = (bar + 1) % form.section_bars == 0
        fill = form.fill[sec] and last_of_section
        for voice, idx, vel, length in rows_cache[groove]:
            offset = (bar * steps) % length
            sel = (idx >= offset) & (idx < offset + steps)
            s, v = idx[sel] - offset, vel[sel] * energy
            if fill and voice in ("snare", "clap", "rim", "hat", "ride", "ohat", "brush", "shaker"):
                keep = s < steps // 2
                s, v = s[keep], v[keep]
            if len(s):
                add(voice, bar, s, v)
        if fill:
            fs = np.arange(steps // 2, steps)
            add("tom" if rng.random() < 0.6 else "snare", bar, fs, np.linspace(0.6, 1.0, len(fs)))
        if bar % form.section_bars == 0 and rng.random() < 0.7 and tpl.fill_prob > 0.1:
            add("crash", bar, np.array([0]), np.array([0.9]))
    for voice in sorted(hits):
        sample = DRUM_SOUNDS[voice](rng, sr, artist.kit) * _DRUM_GAIN[voice]
        pos, gain = hits[voice]
        _place(out, sample, np.concatenate(pos), np.concatenate(gain))
    return (out * artist.kit.gain).astype(np.float32)


def _render_bass(tpl: GenreTemplate, artist: _Artist, grid: _Grid, form: _Form, key: int, ctx: _Context,
                 rng: np.random.Generator) -> np.ndarray:
    """The ``bass`` stem: the artist's bass style over each bar's chord."""
    scale = SCALES["major" if form.mode == "major" else "minor"]
    centre = 38
    events = []
    jitter = tpl.humanise_ms / 1000.0
    for bar in range(form.n_bars):
        root_pc, quality = form.chords[bar]
        next_pc = form.chords[bar + 1][0] if bar + 1 < form.n_bars else form.chords[0][0]
        b = _Bar(grid.steps, _near((key + root_pc) % 12, centre), CHORDS[quality],
                 _near((key + next_pc) % 12, centre), tuple((key + s) % 12 for s in scale), key)
        for step, dur, midi, vel in BASS_STYLES[artist.bass_style](b, rng):
            t = float(grid.time(bar, step)) + rng.normal(0.0, jitter)
            events.append((t, dur * grid.step_s, vel, 0, midi))
    timbre = TIMBRES[artist.bass_timbre]
    y = _render_line(_notes(events, ctx.n, ctx.sr), timbre, ctx, rolloff_shift=artist.rolloff_shift[0])
    return _drive(y, timbre.drive * artist.drive, ctx.sr)


def _voicing(root_pc: int, quality: str, centre: int, voices: int) -> list[int]:
    """MIDI notes of a chord in root position near ``centre``, doubled up to ``voices`` notes."""
    intervals = CHORDS[quality]
    root = _near(root_pc, centre - 4)
    notes = [root + i for i in intervals]
    k = 0
    while len(notes) < voices:
        notes.append(notes[k] + 12)
        k += 1
    return sorted(notes[:voices])


def _render_harmony(tpl: GenreTemplate, artist: _Artist, grid: _Grid, form: _Form, key: int, ctx: _Context,
                    rng: np.random.Generator) -> np.ndarray:
    """The ``other`` stem's chords: the artist's comping style and voicings, strummed for guitars."""
    timbre = TIMBRES[artist.harmony]
    voices = 3 if artist.power_chords else 4
    centre = artist.harmony_register - (5 if artist.power_chords else 0)
    strum = float(rng.uniform(0.006, 0.02)) if "guitar" in artist.harmony else 0.0
    jitter = tpl.humanise_ms / 1000.0
    hits: dict[tuple[float, float, float], list[tuple[int, int]]] = {}
    for bar in range(form.n_bars):
        root_pc, quality = form.chords[bar]
        notes = _voicing((key + root_pc) % 12, quality, centre, voices)
        energy = form.energy[bar // form.section_bars]
        comp = COMP_STYLES[artist.comp](grid.steps, voices, rng)
        shift = {step: rng.normal(0.0, jitter * 0.5) for step in sorted({c[1] for c in comp})}
        for voice, step, dur, vel in comp:
            t = float(grid.time(bar, step)) + shift[step]
            hits.setdefault((t, dur * grid.step_s, vel * energy), []).append((voice, notes[voice]))
    extra = dict(rolloff_shift=artist.rolloff_shift[1], vibrato_cents=4.0 if timbre.attack_s > 0.1 else 0.0,
                 vibrato_hz=float(rng.uniform(4.5, 6.0)))
    if all(len(v) == voices for v in hits.values()):  # block chords: one line, voices share the envelope
        events = [(t, d, vel, 0, *(p for _, p in sorted(v))) for (t, d, vel), v in hits.items()]
        y = _render_line(_notes(events, ctx.n, ctx.sr), timbre, ctx, strum_s=strum, **extra)
    else:  # broken chords: one line per voice
        y = np.zeros(ctx.n, dtype=np.float32)
        for voice in range(voices):
            events = [(t + strum * voice, d, vel, 0, p) for (t, d, vel), v in hits.items() for vv, p in v
                      if vv == voice]
            y += _render_line(_notes(events, ctx.n, ctx.sr), timbre, ctx, **extra)
    return _drive(y, timbre.drive * artist.drive, ctx.sr)


def _render_lead(tpl: GenreTemplate, artist: _Artist, grid: _Grid, form: _Form, key: int, ctx: _Context,
                 noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The ``vocals`` stem: two-bar motifs per section, leaning on chord tones, with vibrato."""
    from scipy import signal  # here, not at the top: SynthSettings alone must import fast
    timbre = TIMBRES[artist.lead]
    breath = None
    if timbre.breath > 0:
        sos = signal.butter(2, min(1500.0, 0.4 * ctx.sr), btype="highpass", fs=ctx.sr, output="sos")
        breath = signal.sosfilt(sos.astype(np.float32), noise)
    scales = tpl.major_scales if form.mode == "major" else tpl.minor_scales
    scale = SCALES[str(_pick(rng, scales))]
    tonic = _near(key, artist.lead_register)
    rap = tpl.lead_grid == 1
    span = 2 * grid.steps  # phrases of two bars
    jitter = tpl.humanise_ms / 1000.0

    def phrase() -> list[tuple[int, float, int, float, int]]:
        slots = np.arange(0, span, tpl.lead_grid)
        on = rng.random(len(slots)) < artist.lead_density
        on[len(slots) * 3 // 4 :] &= rng.random(len(slots) - len(slots) * 3 // 4) < 0.3  # breathe at the end
        starts = slots[on]
        if len(starts) == 0:
            return []
        moves = rng.choice([-2, -1, -1, 0, 1, 1, 2], size=len(starts)) if not rap else \
            rng.choice([-1, 0, 0, 0, 1], size=len(starts))
        degrees = np.clip(np.cumsum(moves) + int(rng.integers(0, 3)), -3, len(scale) + 4)
        ends = np.r_[starts[1:], span]
        legato = rng.uniform(0.5, 0.8) if rap else rng.uniform(0.7, 1.0)
        vowels = rng.integers(0, len(_VOWELS), size=len(starts))
        return [(int(s), float((e - s) * legato), int(d), float(rng.uniform(0.75, 1.0)), int(v))
                for s, e, d, v in zip(starts, ends, degrees, vowels)]

    events = []
    n_sections = len(form.lead_on)
    for sec in range(n_sections):
        if not form.lead_on[sec]:
            continue
        a, b = phrase(), phrase()
        first = sec * form.section_bars
        for j in range(form.section_bars // 2):
            notes = b if j % 4 == 2 else a
            shift = 2 if (j % 4 == 3 and not rap) else 0
            for step, dur, degree, vel, vowel in notes:
                bar = first + 2 * j + step // grid.steps
                if bar >= form.n_bars:
                    continue
                d = degree + shift
                midi = tonic + 12 * (d // len(scale)) + scale[d % len(scale)]
                if step % 4 == 0 and not rap and rng.random() < 0.6:  # lean on chord tones
                    root_pc, quality = form.chords[bar]
                    tones = [(key + root_pc + i) % 12 for i in CHORDS[quality]]
                    midi = min((_near(pc, midi) for pc in tones), key=lambda m: abs(m - midi))
                t = float(grid.time(bar, step % grid.steps)) + rng.normal(0.0, jitter)
                events.append((t, dur * grid.step_s, vel, vowel, midi))
    y = _render_line(_notes(events, ctx.n, ctx.sr), timbre, ctx, rolloff_shift=artist.rolloff_shift[2],
                     formant_shift=artist.formant_shift, vibrato_cents=artist.vibrato,
                     vibrato_hz=float(rng.uniform(4.5, 6.5)), breath=breath)
    return _drive(y, timbre.drive * artist.drive, ctx.sr)


def _shelf(kind: str, hz: float, gain_db: float, sr: int) -> np.ndarray:
    """A shelving biquad (RBJ cookbook, slope 1) as one second-order section."""
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * hz / sr
    cos, alpha = math.cos(w0), math.sin(w0) / math.sqrt(2.0)
    sign = 1.0 if kind == "low" else -1.0
    b0 = a * ((a + 1) - sign * (a - 1) * cos + 2 * math.sqrt(a) * alpha)
    b1 = sign * 2 * a * ((a - 1) - sign * (a + 1) * cos)
    b2 = a * ((a + 1) - sign * (a - 1) * cos - 2 * math.sqrt(a) * alpha)
    a0 = (a + 1) + sign * (a - 1) * cos + 2 * math.sqrt(a) * alpha
    a1 = -sign * 2 * ((a - 1) + sign * (a + 1) * cos)
    a2 = (a + 1) + sign * (a - 1) * cos - 2 * math.sqrt(a) * alpha
    return np.array([[b0 / a0, b1 / a0, b2 / a0, 1.0, a1 / a0, a2 / a0]])


def _reverb(y: np.ndarray, wet: float, ir: np.ndarray) -> np.ndarray:
    """Add ``wet`` times the convolution of ``y`` with the room response ``ir``."""
    from scipy import signal  # here, not at the top: SynthSettings alone must import fast
    if wet <= 0 or not np.any(y):
        return y
    return y + np.float32(wet) * signal.oaconvolve(y, ir)[: len(y)].astype(np.float32)


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y), dtype=np.float64)))


def _track_rng(seed: int, genre_index: int, kind: int, index: int) -> np.random.Generator:
    """A Generator for one track (``kind=0``) or artist (``kind=1``), independent of all others."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(genre_index, kind, index)))


def render_track(genre: str, *, seed: int, track_index: int, settings: SynthSettings) -> dict[str, np.ndarray]:
    """Render one synthetic track as four stems and their mix.

    The track depends only on ``(genre, seed, track_index)`` and on the length, sample rate
    and ``tracks_per_artist`` of ``settings`` (``settings.seed`` and ``settings.genres`` are
    not used), never on which other tracks are rendered or in what order.

    Parameters
    ----------
    genre : str
        A key of :data:`TEMPLATES`.
    seed : int >= 0
        Root seed (``settings.seed`` when called by :func:`generate_dataset`).
    track_index : int >= 0
        Index of the track within its genre; its artist is
        ``track_index // settings.tracks_per_artist``.
    settings : SynthSettings
        Supplies ``duration_s``, ``sample_rate`` and ``tracks_per_artist``.

    Returns
    -------
    audio : dict of str to np.ndarray [shape=(n,)], float32
        ``'drums'``, ``'bass'``, ``'vocals'``, ``'other'`` and ``'mix'``, with
        ``n = round(duration_s * sample_rate)``. ``mix`` is the sum of the four stems (the
        noise floor is part of ``other``), scaled so that the mix peaks at -1 dBFS; if a
        stem would peak higher than the mix, all are scaled down further so that no stem
        exceeds -1 dBFS either. A silent stem (classical drums, an instrumental track's
        vocals) is all zeros.

    Raises
    ------
    ValueError
        If ``genre`` is unknown (the message lists the valid choices), or ``seed`` or
        ``track_index`` is negative.
    """
    from scipy import signal  # here, not at the top: SynthSettings alone must import fast
    if genre not in TEMPLATES:
        raise ValueError(f"unknown genre {genre!r}; valid choices: {', '.join(TEMPLATES)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(track_index, bool) or not isinstance(track_index, (int, np.integer)) or track_index < 0:
        raise ValueError(f"track_index must be a non-negative integer, got {track_index!r}")
    tpl = TEMPLATES[genre]
    g = list(TEMPLATES).index(genre)
    artist = _draw_artist(tpl, _track_rng(int(seed), g, 1, int(track_index) // settings.tracks_per_artist))
    rng = _track_rng(int(seed), g, 0, int(track_index))

    sr, n = settings.sample_rate, settings.n_samples
    ctx = _Context(n, sr, np.arange(n, dtype=np.int32), np.arange(n, dtype=np.float32) / np.float32(sr))
    # the track: tempo near the artist's, usually the artist's key
    lo, hi = tpl.tempo_bpm
    bpm = float(np.clip(artist.tempo * math.exp(rng.normal(0.0, 0.05)), 0.9 * lo, 1.1 * hi))
    key = artist.key if rng.random() < 0.6 else int(rng.integers(12))
    bar_s = 4 * artist.meter * 15.0 / bpm
    grid = _Grid(bpm, artist.meter, artist.swing, tpl.swing_unit, start_s=-float(rng.uniform(0.0, bar_s)))
    form = _draw_form(tpl, artist, grid, settings.duration_s, rng)
    noise = rng.random(n, dtype=np.float32)  # white, uniform in [-sqrt(3), sqrt(3)): unit variance
    noise -= np.float32(0.5)
    noise *= np.float32(2.0 * math.sqrt(3.0))

    stems = {
        "drums": _render_drums(tpl, artist, grid, form, ctx, rng),
        "bass": _render_bass(tpl, artist, grid, form, key, ctx, rng),
        "vocals": _render_lead(tpl, artist, grid, form, key, ctx, noise, rng),
        "other": _render_harmony(tpl, artist, grid, form, key, ctx, rng),
    }
    # room reverb on vocals and other
    rt = float(rng.uniform(0.3, 0.8))
    ir_n = max(int(rt * sr), 1)
    t_ir = np.arange(ir_n) / sr
    ir = rng.standard_normal(ir_n) * np.exp(-6.9 * t_ir / rt)
    ir = signal.lfilter([0.5], [1.0, -0.5], ir)
    ir[: int(0.01 * sr)] = 0.0  # pre-delay
    ir = (ir / max(np.sqrt(np.sum(ir**2)), 1e-12)).astype(np.float32)
    wet = artist.reverb * float(rng.uniform(0.8, 1.2))
    for name in ("vocals", "other"):
        stems[name] = _reverb(stems[name], wet, ir)
    # mix balance: RMS levels per stem
    levels = artist.levels_db + rng.normal(0.0, 1.0, size=4)
    for (name, y), level in zip(stems.items(), levels):
        r = _rms(y)
        if r > 0:
            stems[name] = y * np.float32(10 ** (level / 20.0) / r)
    # noise floor (hiss, sometimes mains hum), part of ``other``
    total = _rms(sum(stems.values()))
    noise_db = artist.noise_db + float(rng.normal(0.0, 3.0))
    floor = noise[::-1] * np.float32(10 ** (noise_db / 20.0) * total)
    if rng.random() < 0.3:
        hum_hz = float(_pick(rng, (50.0, 60.0)))
        hum = np.sin(ctx.time * np.float32(2 * np.pi * hum_hz)) + 0.5 * np.sin(
            ctx.time * np.float32(6 * np.pi * hum_hz)
        )
        floor = floor + hum * np.float32(10 ** ((noise_db + 3) / 20.0) * total)
    stems["other"] = stems["other"] + floor
    # slow loudness swells and the band limit of an old or sampled recording (linear, per stem)
    depth = _uniform(rng, tpl.dynamics_db)
    freqs = rng.uniform(0.02, 0.12, size=3)
    phases = rng.uniform(0, 2 * np.pi, size=3)
    hop = 256  # the swells are slower than 0.12 Hz: a control rate of sr / 256 is plenty
    coarse = ctx.time[::hop]
    swell = sum(np.cos(coarse * np.float32(2 * np.pi * f) + np.float32(p)) for f, p in zip(freqs, phases)) / 3.0
    gain = np.repeat(np.power(np.float32(10.0), np.float32(depth / 40.0) * (swell - np.float32(1.0))), hop)[:n]
    lofi = artist.lofi * float(rng.uniform(0.85, 1.15))
    sections = [_shelf("low", min(150.0, 0.1 * sr), artist.bass_db + float(rng.normal(0.0, 1.0)), sr),
                _shelf("high", min(3000.0, 0.3 * sr), artist.treble_db + float(rng.normal(0.0, 1.0)), sr)]
    if lofi > 0:
        sections.append(signal.butter(2, [min(120.0, 0.1 * sr), min(lofi, 0.45 * sr)], btype="bandpass", fs=sr,
                                      output="sos"))
    sos = np.concatenate(sections).astype(np.float32)
    for name in STEMS:
        stems[name] = signal.sosfilt(sos, stems[name] * gain)
    # the mix is the sum of the stems; one gain brings its peak (or a louder stem's) to -1 dBFS
    mix = sum(stems[name].astype(np.float64) for name in STEMS)
    peak = max(float(np.max(np.abs(mix))), *(float(np.max(np.abs(stems[name]))) for name in STEMS))
    scale = 10 ** (_PEAK_DBFS / 20.0) / peak if peak > 0 else 1.0
    out = {name: stems[name] * np.float32(scale) for name in STEMS}
    out["mix"] = (mix * scale).astype(np.float32)
    return out


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


def generate_dataset(out_dir: str | os.PathLike, settings: SynthSettings, *, progress: bool = True,
                     write_stems: bool = True) -> pd.DataFrame:
    """Render the whole synthetic dataset to ``out_dir``.

    Writes ``audio/<genre>/<track_id>.flac`` (the mix), ``stems/<track_id>/<stem>.flac`` for
    ``drums``, ``bass``, ``vocals`` and ``other`` when ``write_stems``, and ``index.csv``, all
    16-bit FLAC at ``settings.sample_rate`` and each written atomically. ``index.csv`` is
    written last, so its presence means every file it lists is complete.

    Parameters
    ----------
    out_dir : str or PathLike
        Output folder (created if missing; files already there are overwritten, others left).
    settings : SynthSettings
        What to render.
    progress : bool
        Show progress (a bar on a terminal, log lines otherwise).
    write_stems : bool
        Also write the four true stems of every track.

    Returns
    -------
    index : pd.DataFrame
        One row per track with columns ``track_id`` (``blues.00000``), ``genre``,
        ``artist`` (``blues_artist00``), ``path`` (of the mix, relative to ``out_dir``, POSIX
        separators), ``duration_s`` and ``sample_rate``; genres in ``settings.genres`` order.

    Raises
    ------
    TypeError
        If ``settings`` is not a :class:`SynthSettings`.
    """
    from genrelab.compute import map_tracks

    if not isinstance(settings, SynthSettings):
        raise TypeError(f"settings must be a SynthSettings, got {type(settings).__name__}")
    out_dir = Path(out_dir)
    jobs = [(genre, i) for genre in settings.genres for i in range(settings.n_tracks_per_genre)]
    rows: list = [None] * len(jobs)
    render = functools.partial(_render_and_write, out_dir=str(out_dir), settings=settings, write_stems=write_stems)
    for k, row in map_tracks(render, jobs, desc="synth", progress=progress):  # each track on its own seed
        if isinstance(row, BaseException):
            raise row
        rows[k] = row
    index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
    write_text(out_dir / "index.csv", index.to_csv(index=False))
    return index


def _render_and_write(job: tuple[str, int], *, out_dir: str, settings: SynthSettings, write_stems: bool) -> tuple:
    """Render track ``job = (genre, index)`` and write its files; its row of the index."""
    genre, i = job
    tid = track_id(genre, i)
    audio = render_track(genre, seed=settings.seed, track_index=i, settings=settings)
    rel = f"audio/{genre}/{tid}.flac"
    write_audio(Path(out_dir) / rel, audio["mix"], settings.sample_rate)
    if write_stems:
        for stem in STEMS:
            write_audio(Path(out_dir) / "stems" / tid / f"{stem}.flac", audio[stem], settings.sample_rate)
    return (tid, genre, artist_id(genre, i, settings.tracks_per_artist), rel, float(settings.duration_s),
            int(settings.sample_rate))
