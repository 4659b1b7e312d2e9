"""Which driver + simulator pairs the scenarios run against.

Every scenario runs on each protocol's primary rig (its first: dart/rev211, ifsf/tqc,
gilbarco/standard); scenarios marked ``sample`` also run on every other rig (DART firmware
profiles, IFSF layouts and board variants, Gilbarco modes and end-of-sale profiles).
``FORECOURT_SCENARIOS=all`` runs every scenario on every rig (``bench/scenarios.py`` does, and
prints the matrix).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable

import pytest

from tests.scenarios.rig import Rig, Session
from tests.scenarios.rig_dart import PROFILES as DART_PROFILES
from tests.scenarios.rig_dart import DartRig

#: name -> factory; the first rig of each protocol is its primary.
RIGS: dict[str, Callable[[], Rig]] = {
    f"dart/{profile}": (lambda profile=profile: DartRig(profile)) for profile in DART_PROFILES
}


def _extra_rigs() -> None:
    """Rigs of the other drivers, where their simulators exist."""
    try:
        from tests.scenarios.rig_ifsf import RIGS as IFSF
    except ImportError:
        IFSF = {}
    try:
        from tests.scenarios.rig_gilbarco import RIGS as GILBARCO
    except ImportError:
        GILBARCO = {}
    RIGS.update(IFSF)
    RIGS.update(GILBARCO)


_extra_rigs()


def primary_rigs() -> list[str]:
    seen: dict[str, str] = {}
    for name in RIGS:
        seen.setdefault(name.split("/")[0], name)
    return list(seen.values())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sample: also run on every rig in CI")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rig_name" not in metafunc.fixturenames:
        return
    everything = os.environ.get("FORECOURT_SCENARIOS") == "all"
    sampled = metafunc.definition.get_closest_marker("sample") is not None
    names = list(RIGS) if everything or sampled else primary_rigs()
    metafunc.parametrize("rig_name", names)


@pytest.fixture
async def rig(rig_name: str) -> AsyncIterator[Rig]:
    async with RIGS[rig_name]() as running:
        yield running


@pytest.fixture
async def session(rig: Rig) -> AsyncIterator[Session]:
    async with Session(rig) as opened:
        await opened.online()
        for number in opened.line.points:
            await opened.point(number).set_prices(rig.prices)
        yield opened
