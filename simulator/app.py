"""HTTP/JSON control API of the simulator, so that another process can drive a running one.

    curl -XPOST localhost:8090/pumps/0x50/nozzles/1/lift
    curl -XPOST localhost:8090/pumps/0x50/faults --json '{"silent": true}'
    curl -XPOST localhost:8090/pumps/0x51/firmware --json '{"firmware": "legacy"}'
    curl localhost:8090/fills

Pump addresses in paths are DART addresses, decimal (80) or hex (0x50). Volumes and money are
decimal strings. Errors look like the station's own API: `{"error": {"code", "message"}}` with a
4xx status.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from simulator.control import Simulator, faults_json
from simulator.faults import Faults
from simulator.firmware import PROFILES, QUIRKS
from simulator.pump import MeterFault
from simulator.records import SimulationError

__all__ = ["ControlServer", "create_app"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FlowBody(_Body):
    lpm: Decimal = Field(ge=0, le=6000)  # fast enough to speed a test up


class FaultBody(_Body):
    silent: bool | None = None
    corrupt: float | None = Field(default=None, ge=0, le=1)
    drop: float | None = Field(default=None, ge=0, le=1)
    delay_ms: float | None = Field(default=None, ge=0, le=60_000)


class MeterBody(_Body):
    garbled: bool = False
    volume: int | None = Field(default=None, ge=0, le=99_999_999)
    amount: int | None = Field(default=None, ge=0, le=99_999_999)
    price_offset: int = Field(default=0, ge=0, le=9_999)


class FirmwareBody(_Body):
    firmware: str = Field(min_length=1, max_length=200)  # "legacy", "rev211+pump-wide-totals"


class AlarmBody(_Body):
    code: int = Field(ge=0, le=0xFF)


class _UnknownPump(Exception):
    pass


class _BadRequest(Exception):
    pass


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_app(sim: Simulator) -> FastAPI:
    """The control API over `sim` (served by `ControlServer`, or by any ASGI server)."""
    app = FastAPI(title="forecourt pump simulator", docs_url=None, redoc_url=None)

    @app.exception_handler(SimulationError)
    async def _refused(request: Request, error: SimulationError) -> JSONResponse:
        return _error(409, "refused", str(error))

    @app.exception_handler(_UnknownPump)
    async def _unknown(request: Request, error: _UnknownPump) -> JSONResponse:
        return _error(404, "unknown_pump", str(error))

    @app.exception_handler(_BadRequest)
    async def _bad(request: Request, error: _BadRequest) -> JSONResponse:
        return _error(400, "invalid_request", str(error))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return _error(400, "invalid_request", problems)

    def address_of(text: str) -> int:
        try:
            address = int(text, 0)
        except ValueError:
            raise _UnknownPump(f"not a pump address: {text!r}") from None
        if address not in sim.pumps:
            raise _UnknownPump(f"no pump at address {text}")
        return address

    def pump_json(address: int) -> dict[str, Any]:
        return next(p for p in sim.state()["pumps"] if p["address"] == address)

    @app.get("/state")
    async def state() -> dict[str, Any]:
        return sim.state()

    @app.get("/fills")
    async def fills(pump: str | None = None) -> dict[str, Any]:
        records = sim.fills()
        if pump is not None:
            address = address_of(pump)
            records = [r for r in records if r.pump == address]
        return {"fills": [sim.fill_json(r) for r in records]}

    @app.get("/pumps/{address}")
    async def get_pump(address: str) -> dict[str, Any]:
        return pump_json(address_of(address))

    @app.post("/pumps/{address}/nozzles/{nozzle}/lift")
    async def lift(address: str, nozzle: int) -> dict[str, Any]:
        pump = address_of(address)
        sim.lift(pump, nozzle)
        return pump_json(pump)

    @app.post("/pumps/{address}/nozzles/{nozzle}/hang")
    async def hang(address: str, nozzle: int) -> dict[str, Any]:
        pump = address_of(address)
        sim.hang(pump, nozzle)
        return pump_json(pump)

    @app.post("/pumps/{address}/flow")
    async def flow(address: str, body: FlowBody) -> dict[str, Any]:
        pump = address_of(address)
        sim.set_flow(pump, body.lpm)
        return pump_json(pump)

    @app.post("/pumps/{address}/power-cycle")
    async def power_cycle(address: str) -> dict[str, Any]:
        pump = address_of(address)
        sim.power_cycle(pump)
        return pump_json(pump)

    @app.post("/pumps/{address}/alarms")
    async def alarm(address: str, body: AlarmBody) -> dict[str, Any]:
        pump = address_of(address)
        sim.alarm(pump, body.code)
        return pump_json(pump)

    @app.post("/pumps/{address}/meter-fault")
    async def meter_fault(address: str, body: MeterBody) -> dict[str, Any]:
        pump = address_of(address)
        sim.set_meter_fault(pump, MeterFault(body.garbled, body.volume, body.amount,
                                                 body.price_offset))
        return pump_json(pump)

    @app.delete("/pumps/{address}/meter-fault")
    async def heal_meter(address: str) -> dict[str, Any]:
        pump = address_of(address)
        sim.set_meter_fault(pump, None)
        return pump_json(pump)

    @app.get("/firmware")
    async def firmware() -> dict[str, Any]:
        return {
            "profiles": [
                {
                    "name": p.name,
                    "summary": p.summary,
                    "quirks": sorted(q.value for q in p.quirks),
                    "decimals": None
                    if p.decimals is None
                    else {"volume": p.decimals.volume, "amount": p.decimals.amount,
                          "price": p.decimals.price},
                }
                for p in PROFILES.values()
            ],
            "quirks": [{"name": q.value, "what": what} for q, what in QUIRKS.items()],
        }

    @app.post("/pumps/{address}/firmware")
    async def load_firmware(address: str, body: FirmwareBody) -> dict[str, Any]:
        pump = address_of(address)
        try:
            sim.set_firmware(pump, body.firmware)
        except SimulationError as error:  # not a firmware this simulator knows
            raise _BadRequest(str(error)) from None
        return pump_json(pump)

    @app.post("/pumps/{address}/faults")
    async def pump_faults(address: str, body: FaultBody) -> dict[str, Any]:
        return _set_faults(sim, address_of(address), body)

    @app.delete("/pumps/{address}/faults")
    async def heal_pump(address: str) -> dict[str, Any]:
        pump = address_of(address)
        sim.clear_faults(pump)
        return faults_json(Faults())

    @app.post("/faults")
    async def line_faults(body: FaultBody) -> dict[str, Any]:
        return _set_faults(sim, None, body)

    @app.delete("/faults")
    async def heal_line() -> dict[str, Any]:
        sim.clear_faults()
        return faults_json(Faults())

    return app


def _set_faults(sim: Simulator, pump: int | None, body: FaultBody) -> dict[str, Any]:
    delay = None if body.delay_ms is None else body.delay_ms / 1000
    faults = sim.set_fault(pump, silent=body.silent, corrupt=body.corrupt, delay=delay,
                           drop=body.drop)
    return faults_json(faults)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The process that embeds the simulator owns SIGINT/SIGTERM, not uvicorn.
        yield


class ControlServer:
    """The control API on `host:port` (0 = a free port) in the running loop, as a context."""

    def __init__(self, sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = sim
        self.host = host
        self.port = port
        self._server = _Server(
            uvicorn.Config(
                create_app(sim),
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=2,
            )
        )
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> Self:
        # Bound here rather than by uvicorn, so that port 0 gives a port we can tell.
        self._socket = socket.create_server((self.host, self.port))
        self.port = self._socket.getsockname()[1]
        self._task = asyncio.create_task(
            self._server.serve(sockets=[self._socket]), name="simulator-control"
        )
        while not self._server.started:
            if self._task.done():
                await self._task  # it failed to start: raise why
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        if self._socket is not None:
            self._socket.close()
