"""The REST app wired on an unopened memory store, for tests that read its shape (routes,
the OpenAPI document) without serving: the same ``create_app`` over ``build_services``."""

from __future__ import annotations

from fastapi import FastAPI

from chainproof.api.rest.app import create_app
from chainproof.api.rest.ops import Metrics
from chainproof.bootstrap import build_services
from chainproof.config import Settings
from chainproof.domain.pagination import PageTokenCodec
from chainproof.store.memory import MemoryStore


def unopened_app(settings: Settings) -> FastAPI:
    services = build_services(MemoryStore(), settings=settings, tokens=PageTokenCodec(b"m" * 32))
    return create_app(services, Metrics())
