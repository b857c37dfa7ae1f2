"""genrelab: reproducible, leakage-free music genre classification experiments."""

__version__ = "0.1.0"

GENRES: tuple[str, ...] = (
    "blues", "classical", "country", "disco", "hiphop",
    "jazz", "metal", "pop", "reggae", "rock",
)
"""The ten GTZAN genre names, in GTZAN's (alphabetical) order."""
