# The API tests' station (one per module) and their thread check, which here replaces the
# stricter one of tests/audit: a module's station keeps its threads until the module ends.
from tests.api.conftest import api, no_leaked_threads, station_api

__all__ = ["api", "no_leaked_threads", "station_api"]
