"""`forecourt audit verify --config FILE` (CONTRACT section 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cli import main
from edge.store import Store
from tests.helpers import StationSpec

from .conftest import fill, tamper


def config_for(tmp_path: Path, db: Path) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(StationSpec(port_url="socket://127.0.0.1:1", db=db, api_port=1).toml(),
                    "utf-8")
    return path


def test_an_intact_log_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "station.db"
    with Store.open(db) as store:
        fill(store, 3)
    assert main(["audit", "verify", "--config", str(config_for(tmp_path, db))]) == 0
    assert capsys.readouterr().out.strip() == "audit log intact: 3 entries"


def test_a_tampered_entry_exits_1_and_is_named(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "station.db"
    with Store.open(db) as store:
        fill(store, 4)
    tamper(db, "UPDATE audit SET details = '{\"amount\":\"0.01\",\"method\":\"cash\"}' "
               "WHERE seq = 2")
    assert main(["audit", "verify", "--config", str(config_for(tmp_path, db))]) == 1
    out = capsys.readouterr().out.strip()
    assert out.startswith("audit log broken at entry 2: "), out


def test_a_deleted_entry_exits_1_and_is_named(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "station.db"
    with Store.open(db) as store:
        fill(store, 4)
    tamper(db, "DELETE FROM audit WHERE seq = 3")
    assert main(["audit", "verify", "--config", str(config_for(tmp_path, db))]) == 1
    assert capsys.readouterr().out.startswith("audit log broken at entry 3: ")


def test_a_bad_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[station]\n", "utf-8")
    assert main(["audit", "verify", "--config", str(bad)]) == 2
