"""forecourt: the station-side controller (domain, state machines, storage, API)."""

__version__ = "0.1.0"
