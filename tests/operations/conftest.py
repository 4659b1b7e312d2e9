"""The API fixtures (a real daemon on a real port, pumps simulated over a real socket)."""

from __future__ import annotations

from tests.api.conftest import api, no_leaked_threads, station_api

__all__ = ["api", "no_leaked_threads", "station_api"]
