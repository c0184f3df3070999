"""The gRPC entrypoint: ``grafeas.v1.Grafeas`` and ``grafeas.v1.project.Projects``.

A thin translation, like the REST routes: protobuf requests in, a call to
:class:`chainproof.services.scribe.grafeas.GrafeasService`, protobuf responses out. The modules:

* :mod:`.descriptors`: the schema of both services, built at runtime from the ``grafeas``
  package's message types (no copied .proto files, no generated code);
* :mod:`.handlers`: one coroutine per RPC, and the error translation to gRPC status;
* :mod:`.server`: the ``grpc.aio`` server with TLS, size limits, health and reflection.
"""
