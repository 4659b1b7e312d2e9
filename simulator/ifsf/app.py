"""HTTP/JSON control API of the IFSF simulator, in the shape of the DART simulator's.

    curl -XPOST localhost:8091/nodes/1/fps/1/nozzles/1/lift
    curl -XPOST localhost:8091/nodes/1/faults --json '{"heartbeat": false}'
    curl -XPOST localhost:8091/nodes/1/faults --json '{"price_result": {"1": "0x37"}}'
    curl -XPOST localhost:8091/nodes/1/faults --json '{"refuse": {"62": 6}}'
    curl -XPOST localhost:8091/nodes/1/drop-links
    curl -XPOST localhost:8091/nodes/1/stand-alone --json '{"on": true}'
    curl localhost:8091/fills

Nodes in paths are node numbers (subnet 1), decimal. Volumes and money are decimal strings.
Errors look like the station's own API: ``{"error": {"code", "message"}}`` with a 4xx status.
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

from simulator.records import SimulationError

from .control import IfsfSimulator

__all__ = ["ControlServer", "create_app"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FlowBody(_Body):
    lpm: Decimal = Field(ge=0, le=6000)


class FaultBody(_Body):
    heartbeat: bool | None = None
    mute: bool | None = None
    refuse: dict[int, int] | None = None  # data id -> item code
    price_result: dict[int, str] | None = None  # FP -> "0x37"


class StandAloneBody(_Body):
    on: bool
    fp: int | None = Field(default=None, ge=1, le=4)


class _UnknownNode(Exception):
    pass


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_app(sim: IfsfSimulator) -> FastAPI:
    app = FastAPI(title="forecourt IFSF dispenser simulator", docs_url=None, redoc_url=None)

    @app.exception_handler(SimulationError)
    async def _refused(request: Request, error: SimulationError) -> JSONResponse:
        return _error(409, "refused", str(error))

    @app.exception_handler(_UnknownNode)
    async def _unknown(request: Request, error: _UnknownNode) -> JSONResponse:
        return _error(404, "unknown_node", str(error))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        return _error(400, "invalid_request", problems)

    def node_of(text: str) -> int:
        number = text.rpartition(".")[2]
        if not number.isdigit() or int(number) not in sim.nodes:
            raise _UnknownNode(f"no node {text}")
        return int(number)

    @app.get("/state")
    async def state() -> dict[str, Any]:
        return sim.state()

    @app.get("/fills")
    async def fills(node: str | None = None) -> dict[str, Any]:
        records = sim.fills()
        if node is not None:
            wanted = node_of(node)
            records = [r for r in records if r[0] == wanted]
        return {"fills": [sim.fill_json(*r) for r in records]}

    @app.get("/nodes/{node}")
    async def get_node(node: str) -> dict[str, Any]:
        return sim.node_json(node_of(node))

    @app.post("/nodes/{node}/fps/{fp}/nozzles/{nozzle}/lift")
    async def lift(node: str, fp: int, nozzle: int) -> dict[str, Any]:
        number = node_of(node)
        sim.lift(number, fp, nozzle)
        return sim.node_json(number)

    @app.post("/nodes/{node}/fps/{fp}/nozzles/{nozzle}/hang")
    async def hang(node: str, fp: int, nozzle: int) -> dict[str, Any]:
        number = node_of(node)
        sim.hang(number, fp, nozzle)
        return sim.node_json(number)

    @app.post("/nodes/{node}/fps/{fp}/flow")
    async def flow(node: str, fp: int, body: FlowBody) -> dict[str, Any]:
        number = node_of(node)
        sim.set_flow(number, fp, body.lpm)
        return sim.node_json(number)

    @app.post("/nodes/{node}/power-cycle")
    async def power_cycle(node: str) -> dict[str, Any]:
        number = node_of(node)
        sim.power_cycle(number)
        return sim.node_json(number)

    @app.post("/nodes/{node}/drop-links")
    async def drop_links(node: str) -> dict[str, Any]:
        number = node_of(node)
        sim.drop_links(number)
        return sim.node_json(number)

    @app.post("/nodes/{node}/stand-alone")
    async def stand_alone(node: str, body: StandAloneBody) -> dict[str, Any]:
        number = node_of(node)
        sim.stand_alone(number, body.on, body.fp)
        return sim.node_json(number)

    @app.post("/nodes/{node}/faults")
    async def faults(node: str, body: FaultBody) -> dict[str, Any]:
        number = node_of(node)
        results = None
        if body.price_result is not None:
            try:
                results = {fp: int(code, 0) for fp, code in body.price_result.items()}
            except ValueError:
                raise SimulationError("price results are codes like \"0x37\"") from None
        return sim.set_fault(number, heartbeat=body.heartbeat, mute=body.mute,
                             refuse=body.refuse, price_result=results)

    @app.delete("/nodes/{node}/faults")
    async def heal(node: str) -> dict[str, Any]:
        return sim.clear_faults(node_of(node))

    return app


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The process that embeds the simulator owns SIGINT/SIGTERM, not uvicorn.
        yield


class ControlServer:
    """The control API on ``host:port`` (0 = a free port) in the running loop, as a context."""

    def __init__(self, sim: IfsfSimulator, host: str = "127.0.0.1", port: int = 0) -> None:
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
                                         name="ifsf-simulator-control")
        while not self._server.started:
            if self._task.done():
                await self._task
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        if self._socket is not None:
            self._socket.close()
