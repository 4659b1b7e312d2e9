"""HTTP/JSON control API of the Gilbarco simulator (the DART simulator's, with Gilbarco's faults).

    curl -XPOST localhost:8091/pumps/1/nozzles/1/lift
    curl -XPOST localhost:8091/pumps/1/faults --json '{"bad_checksum": 0.2}'
    curl -XPOST localhost:8091/pumps/1/data-error
    curl localhost:8091/fills

Pumps are numbers 1..16, hoses 1..n; volumes and money are decimal strings. Errors look like the
station's API: ``{"error": {"code", "message"}}`` with a 4xx status.
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

from simulator.gilbarco.control import GilbarcoSimulator, faults_json
from simulator.gilbarco.faults import GilbarcoFaults
from simulator.gilbarco.pump import EndProfile
from simulator.records import SimulationError

__all__ = ["ControlServer", "create_app"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FlowBody(_Body):
    lpm: Decimal = Field(ge=0, le=6000)


class FaultBody(_Body):
    silent: bool | None = None
    bad_checksum: float | None = Field(default=None, ge=0, le=1)
    drop: float | None = Field(default=None, ge=0, le=1)
    delay_ms: float | None = Field(default=None, ge=0, le=60_000)


class ConfigAnswerBody(_Body):
    answers: bool


class EndProfileBody(_Body):
    needs_read: bool = True
    needs_hangup: bool = True
    hold: float = Field(default=2.0, ge=0, le=600)


class _UnknownPump(Exception):
    pass


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_app(sim: GilbarcoSimulator) -> FastAPI:
    app = FastAPI(title="forecourt Gilbarco pump simulator", docs_url=None, redoc_url=None)

    @app.exception_handler(SimulationError)
    async def _refused(request: Request, error: SimulationError) -> JSONResponse:
        return _error(409, "refused", str(error))

    @app.exception_handler(_UnknownPump)
    async def _unknown(request: Request, error: _UnknownPump) -> JSONResponse:
        return _error(404, "unknown_pump", str(error))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return _error(400, "invalid_request", problems)

    def number_of(text: str) -> int:
        if not text.isdigit() or int(text) not in sim.pumps:
            raise _UnknownPump(f"no pump {text}")
        return int(text)

    def pump_json(number: int) -> dict[str, Any]:
        sim.tick()
        return sim.pump_json(sim.pump(number))

    @app.get("/state")
    async def state() -> dict[str, Any]:
        return sim.state()

    @app.get("/fills")
    async def fills(pump: str | None = None) -> dict[str, Any]:
        records = sim.fills()
        if pump is not None:
            number = number_of(pump)
            records = [r for r in records if r.pump == number]
        return {"fills": [sim.fill_json(r) for r in records]}

    @app.get("/pumps/{pump}")
    async def get_pump(pump: str) -> dict[str, Any]:
        return pump_json(number_of(pump))

    @app.post("/pumps/{pump}/nozzles/{hose}/lift")
    async def lift(pump: str, hose: int) -> dict[str, Any]:
        number = number_of(pump)
        sim.lift(number, hose)
        return pump_json(number)

    @app.post("/pumps/{pump}/nozzles/{hose}/hang")
    async def hang(pump: str, hose: int) -> dict[str, Any]:
        number = number_of(pump)
        sim.hang(number, hose)
        return pump_json(number)

    @app.post("/pumps/{pump}/flow")
    async def flow(pump: str, body: FlowBody) -> dict[str, Any]:
        number = number_of(pump)
        sim.set_flow(number, body.lpm)
        return pump_json(number)

    @app.post("/pumps/{pump}/power-cycle")
    async def power_cycle(pump: str) -> dict[str, Any]:
        number = number_of(pump)
        sim.power_cycle(number)
        return pump_json(number)

    @app.post("/pumps/{pump}/data-error")
    async def data_error(pump: str) -> dict[str, Any]:
        number = number_of(pump)
        sim.data_error(number)
        return pump_json(number)

    @app.post("/pumps/{pump}/config-answer")
    async def config_answer(pump: str, body: ConfigAnswerBody) -> dict[str, Any]:
        number = number_of(pump)
        sim.set_config_answer(number, body.answers)
        return pump_json(number)

    @app.post("/pumps/{pump}/end-profile")
    async def end_profile(pump: str, body: EndProfileBody) -> dict[str, Any]:
        number = number_of(pump)
        sim.set_end_profile(number, EndProfile(body.needs_read, body.needs_hangup, body.hold))
        return pump_json(number)

    @app.post("/pumps/{pump}/faults")
    async def pump_faults(pump: str, body: FaultBody) -> dict[str, Any]:
        return _set_faults(sim, number_of(pump), body)

    @app.delete("/pumps/{pump}/faults")
    async def heal_pump(pump: str) -> dict[str, Any]:
        sim.clear_faults(number_of(pump))
        return faults_json(GilbarcoFaults())

    @app.post("/faults")
    async def line_faults(body: FaultBody) -> dict[str, Any]:
        return _set_faults(sim, None, body)

    @app.delete("/faults")
    async def heal_line() -> dict[str, Any]:
        sim.clear_faults()
        return faults_json(GilbarcoFaults())

    return app


def _set_faults(sim: GilbarcoSimulator, pump: int | None, body: FaultBody) -> dict[str, Any]:
    delay = None if body.delay_ms is None else body.delay_ms / 1000
    faults = sim.set_fault(pump, silent=body.silent, bad_checksum=body.bad_checksum,
                           drop=body.drop, delay=delay)
    return faults_json(faults)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The process that embeds the simulator owns SIGINT/SIGTERM, not uvicorn.
        yield


class ControlServer:
    """The control API on ``host:port`` (0 = a free port) in the running loop, as a context."""

    def __init__(self, sim: GilbarcoSimulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server = _Server(uvicorn.Config(create_app(sim), log_config=None,
                                              access_log=False, lifespan="off",
                                              timeout_graceful_shutdown=2))
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> Self:
        self._socket = socket.create_server((self.host, self.port))
        self.port = self._socket.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]),
                                         name="gilbarco-simulator-control")
        while not self._server.started:
            if self._task.done():
                await self._task
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
