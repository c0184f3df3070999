"""The admission floor: a do-nothing ASGI app that parses each AdmissionReview and answers
``allowed``, served by uvicorn with the settings ``chainproof serve`` uses (access log off, no
log config of uvicorn's own, TLS when given). ``bench_admission.py --floor`` starts it in its
own process and sends it the same load as chainproof, in the same run.

    .venv/bin/python bench/floor_app.py --port 8123 [--cert tls.crt --key tls.key] [--workers N]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson

Receive = Any
Send = Any


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["method"] == "POST":
        review = orjson.loads(body)
        answer = orjson.dumps(
            {
                "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
                "kind": "AdmissionReview",
                "response": {"uid": review["request"]["uid"], "allowed": True},
            }
        )
    else:  # /readyz
        answer = b"{}"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(answer)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", default=None)
    parser.add_argument("--key", default=None)
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    args = parser.parse_args()
    uvicorn.run(
        "floor_app:app" if args.workers > 1 else app,
        app_dir=str(Path(__file__).parent),
        workers=args.workers,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        log_config=None,
        access_log=False,
        ssl_certfile=args.cert,
        ssl_keyfile=args.key,
    )


if __name__ == "__main__":
    main()
