"""The gRPC server around the RPCs: Projects, health, reflection, limits and failures.

Real channels on loopback against the server ``chainproof serve`` runs (tests/live.py), plus
a few direct calls to the start function and the handler wrapper where a socket cannot show
the behaviour (deadlines inside the server, shutdown order).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from google.api_core import exceptions as gexc
from google.protobuf import descriptor_pb2, descriptor_pool
from grafeas.grafeas_v1 import GrafeasClient
from grafeas.grafeas_v1.services.grafeas import transports
from grafeas.grafeas_v1.types import grafeas as g
from grafeas.grafeas_v1.types import package
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from chainproof.api.grpc.descriptors import GRAFEAS_METHODS, schema
from chainproof.api.grpc.handlers import unary_handler
from chainproof.api.grpc.server import GrafeasGrpcServer
from chainproof.api.grpc.server import start_grpc_server as start_server
from chainproof.api.rest.ops import Metrics
from chainproof.bootstrap import Services, open_services
from chainproof.config import load_settings
from chainproof.errors import ChainproofError, NotFound
from chainproof.store.memory import MemoryStore
from live import LiveServer, free_port, live_server

P = schema()


async def start_grpc_server(services: Services) -> GrafeasGrpcServer:
    """The gRPC server alone, given what it uses, as bootstrap.serve starts it."""
    return await start_server(
        services.grafeas,
        services.access,
        settings=services.settings,
        collectors=Metrics().registry,
    )


def _projects_call(channel: grpc.Channel, rpc: str, response: Any) -> Any:
    return channel.unary_unary(
        f"/grafeas.v1.project.Projects/{rpc}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(grpc_enabled=True, max_body_bytes=256 * 1024) as srv:
        yield srv


@pytest.fixture
def channel(server: LiveServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.grpc_target) as ch:
        yield ch


def test_projects_service_create_get_list_delete(channel: grpc.Channel) -> None:
    from google.protobuf import empty_pb2

    create = _projects_call(channel, "CreateProject", P.project)
    get = _projects_call(channel, "GetProject", P.project)
    listing = _projects_call(channel, "ListProjects", P.list_projects_response)
    delete = _projects_call(channel, "DeleteProject", empty_pb2.Empty)

    for i in range(5):
        made = create(P.create_project_request(project=P.project(name=f"projects/pj-{i}")))
        assert made.name == f"projects/pj-{i}"
    assert get(P.get_project_request(name="projects/pj-3")).name == "projects/pj-3"

    names: list[str] = []
    token = ""
    while True:
        page = listing(P.list_projects_request(page_size=2, page_token=token))
        names += [p.name for p in page.projects]
        token = page.next_page_token
        if not token:
            break
    assert [n for n in names if n.startswith("projects/pj-")] == [
        f"projects/pj-{i}" for i in range(5)
    ]

    delete(P.delete_project_request(name="projects/pj-0"))
    with pytest.raises(grpc.RpcError) as err:
        get(P.get_project_request(name="projects/pj-0"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "project projects/pj-0 does not exist"

    with pytest.raises(grpc.RpcError) as err:
        create(P.create_project_request(project=P.project(name="projects/pj-1")))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as err:
        create(P.create_project_request())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "project name is required" in (err.value.details() or "")
    with pytest.raises(grpc.RpcError) as err:
        listing(P.list_projects_request(filter='name="x"'))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_deleting_a_project_that_holds_notes_is_a_failed_precondition(
    channel: grpc.Channel,
) -> None:
    from google.protobuf import empty_pb2

    client = GrafeasClient(transport=transports.GrafeasGrpcTransport(channel=channel))
    client.create_note(
        parent="projects/full", note_id="n", note=g.Note(package=package.PackageNote(name="x"))
    )
    delete = _projects_call(channel, "DeleteProject", empty_pb2.Empty)
    with pytest.raises(grpc.RpcError) as err:
        delete(P.delete_project_request(name="projects/full"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "delete them first" in (err.value.details() or "")


def test_health_reports_serving_for_the_server_and_both_services(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "grafeas.v1.Grafeas", "grafeas.v1.project.Projects"):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as err:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def _reflect(channel: grpc.Channel, **request: Any) -> Any:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**request)]))
    return next(iter(replies))


def test_reflection_lists_both_services_and_describes_every_method(
    channel: grpc.Channel,
) -> None:
    listed = _reflect(channel, list_services="")
    names = {s.name for s in listed.list_services_response.service}
    assert {"grafeas.v1.Grafeas", "grafeas.v1.project.Projects", "grpc.health.v1.Health"} <= names

    # What grpcurl does: fetch the files that define a symbol and build a pool from them.
    pool = descriptor_pool.DescriptorPool()
    pending: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for symbol in ("grafeas.v1.Grafeas", "grafeas.v1.project.Projects"):
        reply = _reflect(channel, file_containing_symbol=symbol)
        for raw in reply.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
            pending[proto.name] = proto
    added: set[str] = set()

    def add(name: str) -> None:
        if name in added:
            return
        for dep in pending[name].dependency:
            add(dep)
        pool.Add(pending[name])
        added.add(name)

    for name in pending:
        add(name)
    grafeas = pool.FindServiceByName("grafeas.v1.Grafeas")
    assert [m.name for m in grafeas.methods] == [m.name for m in GRAFEAS_METHODS]
    assert grafeas.methods_by_name["ListNotes"].output_type.full_name == (
        "grafeas.v1.ListNotesResponse"
    )
    projects = pool.FindServiceByName("grafeas.v1.project.Projects")
    assert sorted(m.name for m in projects.methods) == [
        "CreateProject",
        "DeleteProject",
        "GetProject",
        "ListProjects",
    ]
    listing = pool.FindMessageTypeByName("grafeas.v1.project.ListProjectsRequest")
    assert {f.name: f.number for f in listing.fields} == {
        "filter": 1,
        "page_size": 2,
        "page_token": 3,
    }


def test_a_message_over_the_limit_is_resource_exhausted_and_the_server_goes_on(
    channel: grpc.Channel,
) -> None:
    client = GrafeasClient(transport=transports.GrafeasGrpcTransport(channel=channel))
    huge = g.Note(long_description="x" * (300 * 1024), package=package.PackageNote(name="x"))
    with pytest.raises(gexc.ResourceExhausted, match="larger than max"):
        client.create_note(parent="projects/big", note_id="n", note=huge)
    small = g.Note(package=package.PackageNote(name="x"))
    assert client.create_note(parent="projects/big", note_id="n", note=small).name


def test_an_unknown_method_is_unimplemented(channel: grpc.Channel) -> None:
    call = channel.unary_unary("/grafeas.v1.Grafeas/ExplodeNote")
    with pytest.raises(grpc.RpcError) as err:
        call(b"")
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    unknown_service = channel.unary_unary("/grafeas.v9.Nothing/Get")
    with pytest.raises(grpc.RpcError) as err:
        unknown_service(b"")
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # And the server still serves.
    stub = health_pb2_grpc.HealthStub(channel)
    assert stub.Check(health_pb2.HealthCheckRequest()).status == (
        health_pb2.HealthCheckResponse.SERVING
    )


def test_undecodable_bytes_are_refused_and_the_server_goes_on(channel: grpc.Channel) -> None:
    call = channel.unary_unary("/grafeas.v1.Grafeas/GetNote")
    with pytest.raises(grpc.RpcError) as err:
        call(b"\xff\xff\xff\xff")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid grafeas.v1.GetNoteRequest message" in (err.value.details() or "")
    client = GrafeasClient(transport=transports.GrafeasGrpcTransport(channel=channel))
    with pytest.raises(gexc.NotFound, match="does not exist"):
        client.get_note(name="projects/x/notes/y")


class _NotesProxy:
    def __init__(self, inner: Any, behaviour: str) -> None:
        self._inner = inner
        self._behaviour = behaviour

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get(self, project: str, note_id: str) -> Any:
        if self._behaviour == "broken":
            raise RuntimeError("secret connection string leaked in a traceback")
        await asyncio.sleep(30)
        return None


class _SessionProxy:
    def __init__(self, inner: Any, behaviour: str) -> None:
        self._inner = inner
        self.notes = _NotesProxy(inner.notes, behaviour)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _MisbehavingStore(MemoryStore):
    """A memory store whose get_note is broken or very slow: a real failure, not a mock."""

    def __init__(self, behaviour: str) -> None:
        super().__init__()
        self._behaviour = behaviour

    def session(self, *, readonly: bool = False) -> Any:
        inner = super().session(readonly=readonly)
        behaviour = self._behaviour

        @asynccontextmanager
        async def wrapped() -> AsyncIterator[Any]:
            async with inner as s:
                yield _SessionProxy(s, behaviour)

        return wrapped()


def test_an_unexpected_failure_is_internal_with_a_generic_message() -> None:
    with (
        live_server(_MisbehavingStore("broken"), grpc_enabled=True) as srv,
        grpc.insecure_channel(srv.grpc_target) as ch,
    ):
        client = GrafeasClient(transport=transports.GrafeasGrpcTransport(channel=ch))
        with pytest.raises(gexc.InternalServerError, match="server log has the details") as err:
            client.get_note(name="projects/p/notes/n")
        assert "secret" not in str(err.value)
        # Other RPCs still work.
        assert list(client.list_notes(parent="projects/p")) == []


def test_the_server_drops_work_when_the_client_deadline_passes() -> None:
    with (
        live_server(_MisbehavingStore("slow"), grpc_enabled=True) as srv,
        grpc.insecure_channel(srv.grpc_target) as ch,
    ):
        client = GrafeasClient(transport=transports.GrafeasGrpcTransport(channel=ch))
        with pytest.raises(gexc.DeadlineExceeded):
            # No retries: the client's default policy would retry DEADLINE_EXCEEDED for 30 s.
            client.get_note(name="projects/p/notes/n", timeout=0.5, retry=None)
        # The memory store holds one lock per session: had the server kept sleeping inside
        # get_note, this call would wait 30 s for it.
        assert list(client.list_notes(parent="projects/p", timeout=5)) == []


class _Aborted(Exception):
    pass


class _FakeContext:
    """The two ServicerContext methods the wrapper uses, recording the abort."""

    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining
        self.aborted: tuple[Any, str, Any] | None = None

    def time_remaining(self) -> float | None:
        return self.remaining

    async def abort(self, code: Any, details: str, trailing_metadata: Any = ()) -> None:
        self.aborted = (code, details, trailing_metadata)
        raise _Aborted


async def test_the_wrapper_maps_a_passed_deadline_to_deadline_exceeded() -> None:
    async def slow(request: Any) -> Any:
        await asyncio.sleep(5)

    ctx = _FakeContext(remaining=0.05)
    with pytest.raises(_Aborted):
        await unary_handler("GetNote", slow)(object(), ctx)
    assert ctx.aborted is not None
    assert ctx.aborted[0] == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "GetNote did not finish before the deadline" in ctx.aborted[1]


async def test_the_wrapper_carries_detail_lines_in_text_and_status() -> None:
    from google.rpc import error_details_pb2, status_pb2

    async def missing(request: Any) -> Any:
        raise NotFound("2 things are missing", details=["first", "second"])

    ctx = _FakeContext(remaining=None)
    with pytest.raises(_Aborted):
        await unary_handler("GetNote", missing)(object(), ctx)
    assert ctx.aborted is not None
    code, text, trailers = ctx.aborted
    assert code == grpc.StatusCode.NOT_FOUND
    assert text == "2 things are missing: first; second"
    status = status_pb2.Status.FromString(dict(trailers)["grpc-status-details-bin"])
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [v.description for v in bad.field_violations] == ["first", "second"]


def test_every_error_leaf_has_a_grpc_status() -> None:
    from chainproof.api.grpc.handlers import grpc_status_code

    leaves = ChainproofError.__subclasses__()
    assert leaves
    for leaf in leaves:
        assert grpc_status_code(leaf("x")).name == leaf.grpc_code


async def test_health_turns_not_serving_when_the_server_stops() -> None:
    settings = load_settings(database_url="memory://", grpc_port=free_port())
    container = await open_services(settings)
    server = await start_grpc_server(container)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            watch = stub.Watch(health_pb2.HealthCheckRequest(service="grafeas.v1.Grafeas"))
            first = await watch.read()
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            stopping = asyncio.create_task(server.stop(grace=3))
            second = await asyncio.wait_for(watch.read(), timeout=3)
            assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()
            await stopping
    finally:
        await server.stop(None)
        await container.close()


async def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings(database_url="memory://", grpc_port=port)
        container = await open_services(settings)
        try:
            with pytest.raises(
                ChainproofError, match=f"cannot listen for gRPC on 127.0.0.1:{port}"
            ):
                await start_grpc_server(container)
        finally:
            await container.close()


async def test_half_a_tls_configuration_is_refused(tmp_path: Any) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not really")
    settings = load_settings(
        database_url="memory://", grpc_port=free_port(), tls={"cert_file": str(cert)}
    )
    container = await open_services(settings)
    try:
        with pytest.raises(ChainproofError, match="must be set together"):
            await start_grpc_server(container)
    finally:
        await container.close()


async def test_a_timeout_inside_the_service_is_a_bug_not_the_client_deadline() -> None:
    async def times_out(request: Any) -> Any:
        raise TimeoutError("a driver gave up")

    ctx = _FakeContext(remaining=30)
    with pytest.raises(_Aborted):
        await unary_handler("ListNotes", times_out)(object(), ctx)
    assert ctx.aborted is not None
    assert ctx.aborted[0] == grpc.StatusCode.INTERNAL
    assert "driver" not in ctx.aborted[1]
