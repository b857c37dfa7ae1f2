"""Hydra plugin of genrelab: every composition of ``conf/`` is validated as it is made.

``dvc exp run`` composes ``conf/`` with Hydra into ``params.yaml`` before any stage runs, and
scans the ``hydra_plugins`` namespace first. Importing this module registers the OmegaConf
resolver ``${genrelab_check:}`` (``conf_digest`` in ``conf/config.yaml``), which validates the
whole composed configuration with :func:`genrelab.config.validate_params` and returns a digest
of ``conf/``. A bad value (``-S model.C=abc``) therefore fails the composition itself: DVC
stops within seconds, names the key, and leaves ``params.yaml`` as it was.

The search-path plugin below only records which ``conf/`` folder Hydra composes, for the
digest. Hydra re-imports plugin modules when it rescans, so everything here is idempotent.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from genrelab.config import _record_config_dir, register_resolver

register_resolver()


class GenrelabConfDir(SearchPathPlugin):
    """Records the primary config folder of each Hydra initialisation (adds no path)."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        for element in search_path.get_path():
            if element.provider == "main" and element.path:
                _record_config_dir(element.path)
