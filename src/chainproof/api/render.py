"""JSON of the services' typed records, as the REST API (and the UI) answer with them.

Services return records (a stored judge document, an audit entry, an API token, a
principal); turning them into the wire's JSON — names built from IDs, RFC 3339
times, camelCase keys — is the entrypoints' business, and lives here once. Grafeas messages
have their own mapping (:func:`chainproof.domain.messages.to_json`); decisions render
themselves (:meth:`chainproof.policy.Decision.to_dict`, shared with the decision log).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chainproof.domain.timestamps import rfc3339
from chainproof.iam.api_tokens import ApiToken
from chainproof.iam.principals import Principal
from chainproof.services.judge.resources import JudgeDocument
from chainproof.store.access import AuditEntry


def judge_document_json(doc: JudgeDocument) -> dict[str, Any]:
    """An attestor or a policy as Binary Authorization's API shows it."""
    return {**doc.data, "updateTime": rfc3339(doc.update_time), "etag": doc.etag}


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "name": f"projects/{entry.project}/auditLogs/{entry.entry_id}",
        "time": rfc3339(entry.time),
        "principal": entry.principal,
        "permission": entry.permission,
        "resource": entry.resource,
        "outcome": entry.outcome,
        **entry.data,
    }


def token_json(token: ApiToken) -> dict[str, Any]:
    def t(v: datetime | None) -> str | None:
        return rfc3339(v) if v else None

    out: dict[str, Any] = {
        "name": token.name,
        "project": token.project,
        "role": token.role,
        "member": f"token:{token.name}",
        "createdBy": token.created_by,
        "createTime": t(token.created_at),
    }
    if token.expires_at:
        out["expireTime"] = t(token.expires_at)
    if token.revoked_at:
        out["revokeTime"] = t(token.revoked_at)
    return out


def whoami_json(principal: Principal) -> dict[str, Any]:
    return {
        "member": principal.member,
        "authenticated": principal.authenticated,
        "via": principal.via,
        "members": list(principal.members()),
        "grants": [{"project": g.project, "role": g.role} for g in principal.grants],
        **({"expireTime": rfc3339(principal.expires_at)} if principal.expires_at else {}),
    }
