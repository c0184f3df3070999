"""gRPC calls show up in /metrics beside the REST ones, by method and status code."""

from __future__ import annotations

import grpc
import httpx
import pytest
from grafeas.grafeas_v1 import GrafeasClient
from grafeas.grafeas_v1.services.grafeas import transports
from grafeas.grafeas_v1.types import attestation, grafeas

from live import live_server


def test_grpc_calls_are_counted_by_method_and_code() -> None:
    with live_server(grpc_enabled=True) as server:
        channel = grpc.insecure_channel(server.grpc_target)
        client = GrafeasClient(transport=transports.GrafeasGrpcTransport(channel=channel))
        client.create_note(
            parent="projects/m",
            note_id="qa",
            note=grafeas.Note(attestation=attestation.AttestationNote()),
        )
        client.get_note(name="projects/m/notes/qa")
        with pytest.raises(Exception, match="does not exist"):
            client.get_note(name="projects/m/notes/absent")
        channel.close()
        text = httpx.get(f"{server.base_url}/metrics").text
    assert (
        'chainproof_grpc_requests_total{code="OK",method="/grafeas.v1.Grafeas/GetNote"} 1.0' in text
    )
    assert (
        'chainproof_grpc_requests_total{code="NOT_FOUND",method="/grafeas.v1.Grafeas/GetNote"} 1.0'
        in text
    )
    assert (
        'chainproof_grpc_requests_total{code="OK",method="/grafeas.v1.Grafeas/CreateNote"} 1.0'
        in text
    )
    assert 'chainproof_grpc_request_seconds_count{method="/grafeas.v1.Grafeas/GetNote"} 2.0' in text
