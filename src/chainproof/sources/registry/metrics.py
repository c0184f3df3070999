"""Prometheus metrics per registry: requests, errors, latency and cache hits."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["RegistryMetrics"]


class RegistryMetrics:
    """Collectors made unregistered by default; :meth:`register` exposes them on /metrics."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.requests = Counter(
            "chainproof_registry_requests",
            "HTTP requests sent to OCI registries, by registry, method and status code.",
            ["registry", "method", "code"],
            registry=registry,
        )
        self.errors = Counter(
            "chainproof_registry_errors",
            "Registry failures that reached a review (timeouts, rate limits, bad answers).",
            ["registry"],
            registry=registry,
        )
        self.latency = Histogram(
            "chainproof_registry_request_seconds",
            "Time for one registry HTTP request, by registry.",
            ["registry"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
        self.cache = Counter(
            "chainproof_registry_cache",
            "Registry answers served from or missed in the cache, by registry, cache and result.",
            ["registry", "cache", "result"],
            registry=registry,
        )

    def register(self, registry: CollectorRegistry) -> None:
        for collector in (self.requests, self.errors, self.latency, self.cache):
            registry.register(collector)
