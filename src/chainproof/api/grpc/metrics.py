"""Prometheus metrics for gRPC calls, in the same registry as the REST ones (/metrics).

Counts calls by full method name and status code, and times them, through a server
interceptor; the RPC handlers know nothing of it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram


class GrpcMetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "chainproof_grpc_requests",
            "gRPC calls served, by method and status code.",
            ["method", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "chainproof_grpc_request_seconds",
            "Time to serve a gRPC call, by method.",
            ["method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # unknown methods (UNIMPLEMENTED) and streams pass untouched
        method = handler_call_details.method
        inner = handler.unary_unary

        async def timed(request: Any, context: Any) -> Any:
            start = time.perf_counter()
            failed = False
            try:
                return await inner(request, context)
            except BaseException:
                failed = True
                raise
            finally:
                # Handlers abort with a status (or set one); none set means OK, or a crash.
                status = context.code()
                code = status.name if status is not None else ("UNKNOWN" if failed else "OK")
                self.calls.labels(method, code).inc()
                self.latency.labels(method).observe(time.perf_counter() - start)

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
