"""The books' tests use the end-to-end fixtures (the pump simulator over a real socket)."""

from tests.e2e.conftest import sim

__all__ = ["sim"]
