"""The API against its own OpenAPI schema: no 500 anywhere, no operation open to the wrong role.

Every operation is taken from the daemon's ``/api/v1/openapi.json``, so an endpoint added later
is covered without touching this module. schemathesis generates the requests from the schema;
they go to the real daemon over a real socket. Its generation is synchronous (Hypothesis), so it
runs in a worker thread while the module's event loop goes on serving the station.

The station is this module's own: the fuzzing authorizes, stops and closes shifts for good.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation as GenericOperation
from schemathesis import Case as GenericCase
from schemathesis import GenerationMode

from domain.bounds import INT64_MAX, INT64_MIN
from tests.api.conftest import Api, assert_error, assert_tasks_finish

pytestmark = pytest.mark.asyncio(loop_scope="module")

APIOperation = GenericOperation[Any, Any, Any, Any]
Case = GenericCase[Any]

#: Operations anybody may call (docs/api.md, "Endpoints"): everything else needs a session.
OPEN = {("GET", "/api/v1/health"), ("GET", "/"), ("POST", "/api/v1/session")}
#: Mutating operations an attendant may call, from the documented role table (authorize, stop)
#: plus logging out of its own session. Written here rather than read from the code, so that
#: a drift between the table and ``ROLE_PERMISSIONS`` shows.
ATTENDANT_MAY = {("POST", "/api/v1/nozzles/{number}/authorize"),
                 ("POST", "/api/v1/pumps/{number}/stop"),
                 ("POST", "/api/v1/forecourt/stop"), ("POST", "/api/v1/pumps/{number}/reset"),
                 ("POST", "/api/v1/pumps/{number}/suspend"),
                 ("POST", "/api/v1/pumps/{number}/resume"),
                 # An alarm acknowledged by whoever saw it (docs/console.md).
                 ("POST", "/api/v1/alarms/{seq}/ack"),
                 # A nozzle put in non-sale mode (a self-check): docs/books.md.
                 ("POST", "/api/v1/nozzles/{number}/nonsale"),
                 ("POST", "/api/v1/session"), ("DELETE", "/api/v1/session")}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
#: Examples per operation and mode: enough to reach the validation edges, quick enough to run
#: every time (the whole module takes well under a minute).
MAX_EXAMPLES = 25
#: Operations found to answer 500 in the product, with what triggers it, left out of the
#: fuzzing until fixed (none now: the shift id overflow it found is fixed).
KNOWN_500: dict[tuple[str, str], str] = {}


@pytest_asyncio.fixture(loop_scope="module")
async def api(station_api: Api) -> AsyncIterator[Api]:
    """The module's station, as the shared ``api`` fixture, with one exception.

    On Python 3.11 ``asyncio.wait_for`` runs its awaitable as a task of its own; the price
    scheduler's minute-long wait (edge/pricing.py) starts a new one whenever it wakes, which a
    fuzzing run long enough to span a wake-up would take for a leak. Those inner waits belong to
    the station's own loops and end with it (``station_api`` checks that at the end).
    """
    tasks = set(asyncio.all_tasks())
    yield station_api
    await station_api.aclose()
    tasks |= {t for t in asyncio.all_tasks()
              if getattr(t.get_coro(), "__qualname__", "") == "Event.wait"}
    await assert_tasks_finish(tasks)


async def load_schema(api: Api) -> Any:
    response = await api.anonymous().get("/api/v1/openapi.json")
    assert response.status_code == 200, response.text
    return schemathesis.openapi.from_dict(response.json())


def operations(schema: Any) -> Iterator[APIOperation]:
    for result in schema.get_all_operations():
        yield result.ok()


def key(operation: APIOperation) -> tuple[str, str]:
    return operation.method.upper(), operation.path


def sample_path(path: str) -> str:
    """A concrete path for a templated one: numbers where the schema wants a number do not
    matter here, as the role check comes before anything looks at the parameters."""
    return re.sub(r"\{[^}]+\}", "1", path)


def fuzz(operation: APIOperation, base_url: str, headers: dict[str, str]
         ) -> tuple[list[str], set[int]]:
    """Run the operation's generated cases (valid and invalid): the ones answered with a 5xx,
    and every status seen."""
    failures: list[str] = []
    statuses: set[int] = set()
    strategy = st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                         operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: Case) -> None:
        # The session goes over whatever headers were generated: the point is to get past the
        # role check and reach the handlers.
        response = case.call(base_url=base_url, headers=headers, timeout=15)
        statuses.add(response.status_code)
        if response.status_code >= 500:
            failures.append(f"{response.status_code} for {case.as_curl_command()}: "
                            f"{response.text[:300]}")

    run()
    return failures, statuses


async def test_schema_lists_every_operation(api: Api) -> None:
    """The schema is the source of the checks below: it must hold the operations they cover."""
    found = {key(op) for op in operations(await load_schema(api))}
    assert found >= OPEN, OPEN - found
    assert {("GET", "/api/v1/forecourt"), ("POST", "/api/v1/sales/{sale_id}/payments"),
            ("POST", "/api/v1/shifts/current/close"), ("GET", "/api/v1/audit")} <= found


async def test_without_a_session_only_the_open_operations_answer(api: Api) -> None:
    schema = await load_schema(api)
    client = api.anonymous()
    checked = 0
    for operation in operations(schema):
        method, path = key(operation)
        if (method, path) in OPEN:
            continue
        body: dict[str, Any] | None = {} if method in MUTATING else None
        response = await client.request(method, sample_path(path), json=body)
        assert_error(response, 401, "unauthenticated")
        # A made-up token is no better than none.
        response = await client.request(method, sample_path(path), json=body,
                                        headers={"Authorization": "Bearer not-a-session"})
        assert response.status_code == 401, (method, path, response.text)
        checked += 1
    assert checked >= 10


async def test_an_attendant_may_not_change_what_it_is_not_allowed_to(api: Api) -> None:
    schema = await load_schema(api)
    client = await api.client("att")
    refused = 0
    for operation in operations(schema):
        method, path = key(operation)
        if method not in MUTATING or (method, path) in ATTENDANT_MAY:
            continue
        response = await client.request(method, sample_path(path), json={})
        assert_error(response, 403, "forbidden")
        refused += 1
    # Payments, receipts, printer retry and shift close at least.
    assert refused >= 4
    # The attendant's session is still good: the refusals changed nothing about it.
    assert (await client.get("/api/v1/forecourt")).status_code == 200


async def fuzz_as_manager(api: Api, operation: APIOperation) -> tuple[list[str], set[int]]:
    if key(operation) == ("DELETE", "/api/v1/session"):
        # Logging out is fuzzed with a session of its own, so that the manager's stays valid.
        token = await api.login("boss")
    else:
        token = await api.token("boss")
    return await asyncio.to_thread(fuzz, operation, api.base_url,
                                   {"Authorization": f"Bearer {token}"})


async def test_no_operation_answers_500_to_a_manager(api: Api) -> None:
    failures: dict[tuple[str, str], list[str]] = {}
    for operation in operations(await load_schema(api)):
        if key(operation) not in KNOWN_500:
            failures[key(operation)], statuses = await fuzz_as_manager(api, operation)
            # Some request got past the session and the role: the handlers were reached.
            assert statuses - {401, 403}, (key(operation), statuses)
    assert len(failures) >= 10
    unexpected = {k: v[:3] for k, v in failures.items() if v}
    assert not unexpected, unexpected
    # The manager's session survived the fuzzing (nothing logged it out by accident).
    client = await api.client("boss")
    response = await client.get("/api/v1/forecourt")
    assert response.status_code == 200, response.text


# ---------------------------------------------------------------------- integers bounded


def integer_inputs(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every integer a request can carry (parameters and bodies, references followed), with
    where it is: SQLite holds 64 bits, so each must be bounded in the schema (domain/bounds.py)."""
    components = document.get("components", {}).get("schemas", {})

    def walk(where: str, schema: Any, seen: frozenset[str]) -> Iterator[tuple[str, Any]]:
        if not isinstance(schema, dict):
            return
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                yield from walk(f"{where}<{name}>", components[name], seen | {name})
            return
        if schema.get("type") == "integer":
            yield where, schema
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for index, part in enumerate(schema.get(key, [])):
                yield from walk(f"{where}|{index}", part, seen)
        for name, part in schema.get("properties", {}).items():
            yield from walk(f"{where}.{name}", part, seen)
        for key in ("items", "additionalProperties"):
            yield from walk(f"{where}[]", schema.get(key), seen)

    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for parameter in operation.get("parameters", []):
                yield from walk(f"{method.upper()} {path} {parameter['name']}",
                                parameter.get("schema"), frozenset())
            for media in operation.get("requestBody", {}).get("content", {}).values():
                yield from walk(f"{method.upper()} {path} body", media.get("schema"),
                                frozenset())


async def test_every_integer_a_request_carries_is_bounded(api: Api) -> None:
    response = await api.anonymous().get("/api/v1/openapi.json")
    found = dict(integer_inputs(response.json()))
    # The walk reaches what it must (the check would pass for nothing otherwise).
    assert {"GET /api/v1/sales since_seq", "GET /api/v1/audit since_seq",
            "POST /api/v1/nozzles/{number}/authorize number",
            "GET /api/v1/shifts/{shift_id} shift_id"} <= set(found), sorted(found)

    def bounded(schema: dict[str, Any]) -> bool:
        low = schema.get("minimum", schema.get("exclusiveMinimum", INT64_MIN - 1))
        high = schema.get("maximum", schema.get("exclusiveMaximum", INT64_MAX + 1))
        return bool(low >= INT64_MIN and high <= INT64_MAX)

    unbounded = {where: schema for where, schema in found.items() if not bounded(schema)}
    assert not unbounded, unbounded


async def test_an_integer_past_its_bound_is_a_422(api: Api) -> None:
    """Every integer parameter, one past each end of its range: refused, never a 500."""
    schema = await load_schema(api)
    client = await api.client("boss")
    document = (await api.anonymous().get("/api/v1/openapi.json")).json()
    checked = 0
    for operation in operations(schema):
        method, path = key(operation)
        for parameter in document["paths"][path][method.lower()].get("parameters", []):
            bounds = parameter.get("schema", {})
            if bounds.get("type") != "integer" or parameter["in"] not in ("path", "query"):
                continue
            for value in (bounds["maximum"] + 1, bounds["minimum"] - 1, 2**64, -(2**64)):
                if parameter["in"] == "path":
                    url = sample_path(path.replace("{" + parameter["name"] + "}", str(value)))
                    params = None
                else:
                    url, params = sample_path(path), {parameter["name"]: str(value)}
                response = await client.request(method, url, params=params,
                                                json={} if method in MUTATING else None)
                assert_error(response, 422, "invalid_request")
                checked += 1
    assert checked >= 16
