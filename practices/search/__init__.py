"""Search over published practices: one port (`port.py`), several adapters."""

from node.core.settings import Settings
from practices.search.port import SearchBackend


def make_backend(settings: Settings) -> SearchBackend:
    if settings.search_backend == "meilisearch":
        from practices.search.meili import MeiliSearch

        return MeiliSearch(settings.meili_url or "", settings.meili_key)
    from practices.search.sql import SqlSearch

    return SqlSearch()
