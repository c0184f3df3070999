"""Building access control from settings, and the secure-by-default start-up rule.

Part of the composition root's work, kept apart from :mod:`chainproof.bootstrap` because it
is all about one thing: which identities the server can verify, and what an anonymous
caller may do given the address the server listens on.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import structlog

from chainproof.config import Settings
from chainproof.errors import FailedPrecondition, InvalidArgument
from chainproof.iam.authorizer import Authorizer
from chainproof.iam.jwt import IssuerConfig
from chainproof.iam.principals import Principal, anonymous, validate_member
from chainproof.services.access.authn import Authenticator, TokenVerifier, local_admin
from chainproof.services.access.control import AccessControl
from chainproof.services.common import utc_now
from chainproof.sources.oidc import KeySource, OidcIssuer
from chainproof.sources.tokenreview import TokenReviewer
from chainproof.store.factory import create_access_repository
from chainproof.store.port import MetadataStore

log = structlog.get_logger("chainproof.access")

ADMISSION_CALLER = "roles/chainproof.admissionCaller"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere


def authentication_configured(settings: Settings) -> bool:
    auth = settings.auth
    return bool(auth.oidc_issuers or auth.token_review or settings.tls.client_ca_file)


def check_listener(settings: Settings) -> None:
    """Refuse to serve a non-loopback address with no way to authenticate anyone."""
    if is_loopback(settings.host) or authentication_configured(settings):
        return
    if settings.auth.allow_anonymous:
        log.warning(
            "serving anonymous callers on a non-loopback address; they get only what IAM "
            "grants allUsers",
            host=settings.host,
        )
        return
    raise FailedPrecondition(
        f"refusing to listen on {settings.host} with no authentication configured (no "
        "auth.oidc_issuers, auth.token_review or tls.client_ca_file): configure one, or pass "
        "--allow-anonymous (CHAINPROOF_AUTH__ALLOW_ANONYMOUS=true) to serve anonymous callers "
        "only what IAM grants allUsers"
    )


def anonymous_principal(settings: Settings) -> Principal:
    if settings.auth.anonymous == "auto" and is_loopback(settings.host):
        return local_admin()
    return anonymous()


def build_access_control(settings: Settings, store: MetadataStore) -> AccessControl:
    auth = settings.auth
    try:
        admins = [validate_member(m) for m in auth.bootstrap_admins]
        callers = [validate_member(m) for m in auth.admission_callers]
    except InvalidArgument as exc:
        raise InvalidArgument(f"auth settings: {exc.message}") from exc
    oidc: dict[str, OidcIssuer] = {}
    try:
        for cfg in auth.oidc_issuers:
            oidc[cfg.issuer] = OidcIssuer(
                IssuerConfig(issuer=cfg.issuer, audiences=tuple(cfg.audiences), kind=cfg.kind),
                KeySource(
                    jwks_uri=cfg.jwks_uri,
                    jwks_file=cfg.jwks_file,
                    ca_file=cfg.ca_file,
                    bearer_token_file=cfg.bearer_token_file,
                ),
                clock=utc_now,
            )
        review: TokenReviewer | None = None
        if auth.token_review is not None:
            tr = auth.token_review
            review = TokenReviewer(
                tr.api_server,
                credential_file=tr.credential_file,
                ca_file=tr.ca_file,
                audiences=tuple(tr.audiences),
                clock=utc_now,
            )
    except ValueError as exc:
        raise InvalidArgument(f"auth settings: {exc}") from exc
    issuers: dict[str, TokenVerifier] = dict(oidc)
    repository = create_access_repository(store)
    authenticator = Authenticator(
        issuers=issuers,
        token_review=review,
        find_api_token=repository.find_token,
        anonymous_principal=anonymous_principal(settings),
        clock=utc_now,
        cache_ttl=timedelta(seconds=auth.token_cache_seconds),
    )
    closers: list[OidcIssuer | TokenReviewer] = [*oidc.values(), *([review] if review else [])]
    return AccessControl(
        authenticator=authenticator,
        authorizer=Authorizer(
            admins,
            [(m, settings.admission.project, ADMISSION_CALLER) for m in callers],
        ),
        repository=repository,
        clock=utc_now,
        policy_ttl=timedelta(seconds=auth.policy_cache_seconds),
        closers=closers,
    )
