"""The protobuf schema served over gRPC, assembled at runtime.

The ``grafeas`` package (proto-plus) carries every ``grafeas.v1`` message but no service
definitions, and nothing at all of ``grafeas.v1.project``. This module fills both gaps from
Python, without .proto files or generated code:

* the ``grafeas.v1.Grafeas`` service: its method table names the package's own request and
  response classes, so the handlers decode exactly the messages the official client encodes;
* ``grafeas.v1.project``: the ``Project`` messages and service, with the field numbers of the
  upstream ``proto/v1/project.proto``, turned into message classes by protobuf itself.

Everything lives in a private descriptor pool (a copy of the grafeas files plus the two files
made here), built once on first use. It is private so that registering ``grafeas.v1.project``
can never collide with a later ``grafeas`` release that ships it in the process-wide pool;
server reflection reads this pool. Nothing here does I/O.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, empty_pb2, message_factory
from google.protobuf.descriptor import FileDescriptor
from grafeas.grafeas_v1.types import grafeas as _g

GRAFEAS_SERVICE = "grafeas.v1.Grafeas"
PROJECTS_SERVICE = "grafeas.v1.project.Projects"

#: File names inside the private pool. The Grafeas service sits beside the package's types
#: file (it cannot go *into* it: that file is already built); the projects file keeps the
#: upstream name.
_GRAFEAS_SERVICE_FILE = "grafeas/grafeas_v1/services/grafeas.proto"
_PROJECTS_FILE = "grafeas/v1/project.proto"

EmptyPB: Any = empty_pb2.Empty


@dataclass(frozen=True, slots=True)
class Method:
    """One unary RPC: its name and the raw protobuf classes it reads and writes."""

    name: str
    request: Any
    response: Any


#: Every RPC of grafeas.v1.Grafeas, in the order of the upstream grafeas.proto.
GRAFEAS_METHODS: tuple[Method, ...] = (
    Method("GetOccurrence", _g.GetOccurrenceRequest.pb(), _g.Occurrence.pb()),
    Method("ListOccurrences", _g.ListOccurrencesRequest.pb(), _g.ListOccurrencesResponse.pb()),
    Method("DeleteOccurrence", _g.DeleteOccurrenceRequest.pb(), EmptyPB),
    Method("CreateOccurrence", _g.CreateOccurrenceRequest.pb(), _g.Occurrence.pb()),
    Method(
        "BatchCreateOccurrences",
        _g.BatchCreateOccurrencesRequest.pb(),
        _g.BatchCreateOccurrencesResponse.pb(),
    ),
    Method("UpdateOccurrence", _g.UpdateOccurrenceRequest.pb(), _g.Occurrence.pb()),
    Method("GetOccurrenceNote", _g.GetOccurrenceNoteRequest.pb(), _g.Note.pb()),
    Method("GetNote", _g.GetNoteRequest.pb(), _g.Note.pb()),
    Method("ListNotes", _g.ListNotesRequest.pb(), _g.ListNotesResponse.pb()),
    Method("DeleteNote", _g.DeleteNoteRequest.pb(), EmptyPB),
    Method("CreateNote", _g.CreateNoteRequest.pb(), _g.Note.pb()),
    Method("BatchCreateNotes", _g.BatchCreateNotesRequest.pb(), _g.BatchCreateNotesResponse.pb()),
    Method("UpdateNote", _g.UpdateNoteRequest.pb(), _g.Note.pb()),
    Method(
        "ListNoteOccurrences",
        _g.ListNoteOccurrencesRequest.pb(),
        _g.ListNoteOccurrencesResponse.pb(),
    ),
)

_T = descriptor_pb2.FieldDescriptorProto
# (message, [(field, number, type, label, type_name)]) as in upstream project.proto.
_PROJECT_MESSAGES: tuple[tuple[str, tuple[tuple[str, int, int, int, str], ...]], ...] = (
    ("Project", (("name", 1, _T.TYPE_STRING, _T.LABEL_OPTIONAL, ""),)),
    (
        "CreateProjectRequest",
        (("project", 1, _T.TYPE_MESSAGE, _T.LABEL_OPTIONAL, ".grafeas.v1.project.Project"),),
    ),
    ("GetProjectRequest", (("name", 1, _T.TYPE_STRING, _T.LABEL_OPTIONAL, ""),)),
    (
        "ListProjectsRequest",
        (
            ("filter", 1, _T.TYPE_STRING, _T.LABEL_OPTIONAL, ""),
            ("page_size", 2, _T.TYPE_INT32, _T.LABEL_OPTIONAL, ""),
            ("page_token", 3, _T.TYPE_STRING, _T.LABEL_OPTIONAL, ""),
        ),
    ),
    ("DeleteProjectRequest", (("name", 1, _T.TYPE_STRING, _T.LABEL_OPTIONAL, ""),)),
    (
        "ListProjectsResponse",
        (
            ("projects", 1, _T.TYPE_MESSAGE, _T.LABEL_REPEATED, ".grafeas.v1.project.Project"),
            ("next_page_token", 2, _T.TYPE_STRING, _T.LABEL_OPTIONAL, ""),
        ),
    ),
)
# (method, request, response) of the Projects service.
_PROJECT_RPCS: tuple[tuple[str, str, str], ...] = (
    ("CreateProject", "CreateProjectRequest", "Project"),
    ("GetProject", "GetProjectRequest", "Project"),
    ("ListProjects", "ListProjectsRequest", "ListProjectsResponse"),
    ("DeleteProject", "DeleteProjectRequest", ".google.protobuf.Empty"),
)


@dataclass(frozen=True, slots=True)
class Schema:
    """The private pool and the message classes of grafeas.v1.project made from it."""

    pool: descriptor_pool.DescriptorPool
    project: Any
    create_project_request: Any
    get_project_request: Any
    list_projects_request: Any
    list_projects_response: Any
    delete_project_request: Any
    projects_methods: tuple[Method, ...]


def _copy_with_dependencies(
    pool: descriptor_pool.DescriptorPool, file: FileDescriptor, done: set[str]
) -> None:
    # A pool accepts a file only after the files it imports, hence depth first.
    if file.name in done:
        return
    for dep in file.dependencies:
        _copy_with_dependencies(pool, dep, done)
    proto = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto)
    pool.Add(proto)
    done.add(file.name)


def _grafeas_service_file() -> descriptor_pb2.FileDescriptorProto:
    types_file = GRAFEAS_METHODS[0].request.DESCRIPTOR.file.name
    proto = descriptor_pb2.FileDescriptorProto(
        name=_GRAFEAS_SERVICE_FILE,
        package="grafeas.v1",
        syntax="proto3",
        dependency=[types_file, "google/protobuf/empty.proto"],
    )
    service = proto.service.add(name="Grafeas")
    for m in GRAFEAS_METHODS:
        service.method.add(
            name=m.name,
            input_type="." + m.request.DESCRIPTOR.full_name,
            output_type="." + m.response.DESCRIPTOR.full_name,
        )
    return proto


def _projects_file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name=_PROJECTS_FILE,
        package="grafeas.v1.project",
        syntax="proto3",
        dependency=["google/protobuf/empty.proto"],
    )
    for message_name, fields in _PROJECT_MESSAGES:
        message = proto.message_type.add(name=message_name)
        for field_name, number, field_type, label, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=field_type, label=label)
            if type_name:
                field.type_name = type_name
    service = proto.service.add(name="Projects")
    for rpc, request, response in _PROJECT_RPCS:
        service.method.add(
            name=rpc,
            input_type=".grafeas.v1.project." + request,
            output_type=response if response.startswith(".") else ".grafeas.v1.project." + response,
        )
    return proto


@functools.cache
def schema() -> Schema:
    """Build the private pool once per process; later calls return the same objects."""
    pool = descriptor_pool.DescriptorPool()
    done: set[str] = set()
    for m in GRAFEAS_METHODS:
        _copy_with_dependencies(pool, m.request.DESCRIPTOR.file, done)
    _copy_with_dependencies(pool, empty_pb2.DESCRIPTOR, done)
    pool.Add(_grafeas_service_file())
    pool.Add(_projects_file())

    def cls(name: str) -> Any:
        return message_factory.GetMessageClass(
            pool.FindMessageTypeByName("grafeas.v1.project." + name)
        )

    classes = {name: cls(name) for name, _ in _PROJECT_MESSAGES}
    methods = tuple(
        Method(
            rpc,
            classes[request],
            EmptyPB if response.startswith(".") else classes[response],
        )
        for rpc, request, response in _PROJECT_RPCS
    )
    return Schema(
        pool=pool,
        project=classes["Project"],
        create_project_request=classes["CreateProjectRequest"],
        get_project_request=classes["GetProjectRequest"],
        list_projects_request=classes["ListProjectsRequest"],
        list_projects_response=classes["ListProjectsResponse"],
        delete_project_request=classes["DeleteProjectRequest"],
        projects_methods=methods,
    )
