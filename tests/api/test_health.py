"""Health, metrics, the console page and the headers every answer carries (CONTRACT section 3)."""

from __future__ import annotations

import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge import __version__
from tests.api.conftest import Api, assert_error
from tests.helpers import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, parsed by the Prometheus client's own parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_health_has_the_documented_shape_and_is_ok(api: Api) -> None:
    response = await api.anonymous().get("/api/v1/health")
    assert response.status_code == 200, response.text
    health = response.json()
    assert set(health) == {"status", "station_id", "version", "boot_id", "lines", "storage",
                           "sync", "printer", "clock", "services", "pumps", "backup"}
    services = {s["name"]: s for s in health["services"]}
    assert {"api", "store-probe", "orders", "price-schedules"} <= set(services)
    assert services["api"] == {"name": "api", "critical": True, "state": "running",
                               "restarts": 0, "error": None}
    assert services["orders"]["critical"] is False
    assert health["clock"] == {"steps": 0, "last_step_seconds": None}
    assert health["printer"] is None  # no [printer] in this station's config
    assert health["backup"] is None  # no `forecourt db backup --dir` has run yet
    assert health["status"] == "ok"
    assert health["station_id"] == "XJ-TEST-0001"
    assert health["version"] == __version__
    assert re.fullmatch(r"[0-9a-f]{32}", health["boot_id"])
    assert health["lines"] == [{"id": "line1", "protocol": "dart", "online": True,
                                "pumps_online": 2, "pumps": 2}]
    assert health["pumps"] == []  # nothing out of service, blocked or unreadable
    assert health["storage"] == {"writable": True, "problem": None}
    sync = health["sync"]
    assert set(sync) == {"connected", "backlog", "configured"}
    assert sync["connected"] is False and sync["configured"] is False  # no [sync]: offline
    assert isinstance(sync["backlog"], int) and sync["backlog"] >= 0
    # The boot id stays for the daemon's life.
    again = (await api.anonymous().get("/api/v1/health")).json()
    assert again["boot_id"] == health["boot_id"]


async def test_metrics_show_pumps_online(api: Api) -> None:
    text = await scrape(await api.client("boss"))
    assert 'forecourt_pump_online{pump="1"} 1.0' in text.splitlines()
    assert 'forecourt_pump_online{pump="2"} 1.0' in text.splitlines()
    found = samples(text)
    assert found[("forecourt_pump_fuelling", (("pump", "1"),))] == 0.0
    assert found[("forecourt_store_writable", ())] == 1.0
    assert found[("forecourt_clock_steps_total", ())] == 0.0


async def test_line_exchanges_grow_between_scrapes(api: Api) -> None:
    client = await api.client("boss")
    key = ("forecourt_line_exchanges_total", (("line", "line1"),))
    first = samples(await scrape(client))[key]

    async def grown() -> bool | None:
        return samples(await scrape(client))[key] > first

    grew: bool = await wait_until(grown, timeout=3, what="line exchanges to grow")
    assert grew
    assert first > 0  # the pumps have been polled since the station started


async def test_metrics_count_console_sessions_and_subscribers(api: Api) -> None:
    client = await api.client("boss")  # a manager's session may scrape (docs/api.md)
    before = samples(await scrape(client))[("forecourt_console_sessions", ())]
    await api.login("fin")
    after = samples(await scrape(client))
    assert after[("forecourt_console_sessions", ())] == before + 1
    assert after[("forecourt_event_subscribers", ())] == 0.0


@pytest.mark.parametrize("path", ["/api/v1/health", "/metrics", "/", "/api/v1/forecourt",
                                  "/api/v1/sales", "/api/v1/nowhere"])
@pytest.mark.parametrize("logged_in", [True, False], ids=["logged in", "anonymous"])
async def test_every_answer_carries_the_security_headers(api: Api, path: str,
                                                         logged_in: bool) -> None:
    client = await api.client("fin") if logged_in else api.anonymous()
    response = await client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_an_error_answer_carries_the_security_headers(api: Api) -> None:
    response = await api.anonymous().post("/api/v1/session", content=b"{")
    assert_error(response, 422, "invalid_request")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_the_console_is_served_and_loads_nothing_from_elsewhere(api: Api) -> None:
    response = await api.anonymous().get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<html" in page.lower()
    script = await api.anonymous().get("/static/console.js")
    assert script.status_code == 200
    assert "/api/v1/session" in script.text and "/api/v1/events" in script.text
    # A station is often offline: no script, style or font from another host.
    for text in (page, script.text):
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text, re.IGNORECASE)
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_there_is_no_swagger_ui(api: Api, path: str) -> None:
    assert_error(await api.anonymous().get(path), 404, "not_found")


async def test_the_openapi_schema_stays_for_tools(api: Api) -> None:
    response = await api.anonymous().get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/v1/session", "/api/v1/health", "/api/v1/forecourt",
                 "/api/v1/nozzles/{number}/authorize", "/api/v1/pumps/{number}/stop",
                 "/api/v1/sales", "/api/v1/sales/{sale_id}/payments"):
        assert path in paths, path
