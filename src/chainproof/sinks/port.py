"""The sink port: one delivery attempt of one event to one subscriber."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    """An event ready to send: its ID (the same on every attempt), the resource it is about
    and its CloudEvent in structured JSON mode."""

    event_id: str
    subject: str
    type: str
    body: bytes


class DeliveryFailed(Exception):
    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Sink(Protocol):
    async def deliver(self, event: OutgoingEvent) -> None:
        """Return once the subscriber has the event; raise DeliveryFailed otherwise."""

    async def close(self) -> None: ...
