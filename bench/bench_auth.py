"""The cost of deciding who is calling and whether they may, per call, in-process.

Run: ``.venv/bin/python bench/bench_auth.py [--seconds 1.0]``. Measures, on the same machine
in the same run:

* floor: the authorization decision alone (a policy already loaded);
* a cached bearer token (the admission path after its first review): hash + cache hit +
  decision through AccessControl (policy cache hit);
* an uncached ES256 JWT verification (what every call would cost without the cache);
* an uncached API token (hash + lookup in the memory repository).

Prints figures and their ratio to the floor; nothing here asserts a speed. The machine is
shared: figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from chainproof.iam import api_tokens
from chainproof.iam import permissions as p
from chainproof.iam.api_tokens import ApiToken
from chainproof.iam.authorizer import Authorizer, Resource
from chainproof.iam.jwt import IssuerConfig, KeySet, principal_from_claims, verify_jwt
from chainproof.iam.policy import IamPolicy
from chainproof.iam.principals import anonymous
from chainproof.services.access.authn import Authenticator, Credentials
from chainproof.services.access.control import AccessControl, Operation
from chainproof.store.access import AccessStore
from chainproof.store.memory import MemoryStore

ISS = "https://issuer.bench.invalid"


def now() -> datetime:
    return datetime.now(UTC)


async def rate(label: str, seconds: float, call: Callable[[], Awaitable[object]]) -> float:
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            await call()
        n += 100
    per = elapsed / n * 1e6
    print(f"  {label:<48} {per:9.2f} µs/call")
    return per


async def main(seconds: float) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = orjson.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk["kid"] = "k"
    keys = KeySet.from_json({"keys": [jwk]})
    cfg = IssuerConfig(issuer=ISS, audiences=("chainproof",))
    claims = {"iss": ISS, "aud": "chainproof", "sub": "x", "email": "caller@bench.invalid",
              "email_verified": True, "exp": int(time.time()) + 3600}  # fmt: skip
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k"})

    class Issuer:
        async def verify(self, t: str) -> object:
            return principal_from_claims(verify_jwt(t, keys, cfg, now()), cfg)

    repo = AccessStore(MemoryStore())
    member = "user:caller@bench.invalid"
    policy = IamPolicy.of([("roles/chainproof.admissionCaller", [member])])
    await repo.set_policy("projects/bench", "bench", policy, None, now())
    secret = api_tokens.new_secret()
    await repo.insert_token(
        ApiToken(
            "ci",
            "bench",
            "roles/chainproof.admissionCaller",
            api_tokens.hash_token(secret),
            now(),
            "bench",
        )
    )
    authn = Authenticator(
        issuers={ISS: Issuer()},  # type: ignore[dict-item]
        token_review=None,
        find_api_token=repo.find_token,
        anonymous_principal=anonymous(),
        clock=now,
        api_token_ttl=timedelta(0),
    )
    access = AccessControl(authenticator=authn, authorizer=Authorizer(), repository=repo, clock=now)
    op = Operation("POST /webhook/admission", "rest")
    resource = Resource("bench")
    principal = await authn.authenticate(Credentials(bearer=token))
    decide = Authorizer().decide
    policies = [("projects/bench", policy)]

    async def floor() -> None:
        decide(principal, p.ADMISSION_REVIEW, resource, policies)

    async def cached() -> None:
        who = await authn.authenticate(Credentials(bearer=token))
        await access.require(who, p.ADMISSION_REVIEW, resource, op)

    async def uncached_jwt() -> None:
        principal_from_claims(verify_jwt(token, keys, cfg, now()), cfg)

    async def uncached_api_token() -> None:
        await authn.authenticate(Credentials(bearer=secret))

    print(f"chainproof auth bench ({seconds:g} s per figure; shared machine: noisy)")
    base = await rate("floor: Authorizer.decide", seconds, floor)
    for label, call in (
        ("cached bearer token + AccessControl.require", cached),
        ("uncached ES256 JWT verification", uncached_jwt),
        ("API token, hash + repository lookup", uncached_api_token),
    ):
        per = await rate(label, seconds, call)
        print(f"  {'':<48} {per / base:9.1f} × floor")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    asyncio.run(main(parser.parse_args().seconds))
