"""JSON Schemas of the REST resources that are not Grafeas messages: the judge's (policy,
attestors, decisions, evaluations), access control (IAM policies, tokens, audit logs), the
scanner's and ingestion's reports, and the error body every route answers with.

Owns the published shape of these resources; the Grafeas messages come from their protobuf
descriptors (:mod:`chainproof.api.rest.proto_schema`). Objects stay open to fields added
later (the server itself refuses unknown fields in requests, saying which); required fields
are the ones every response carries.
"""

from __future__ import annotations

from typing import Any

PREFIX = "#/components/schemas/"


def ref(name: str) -> dict[str, Any]:
    return {"$ref": PREFIX + name}


def _obj(
    properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


_S = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_STRINGS = _array(_S)
_NULLABLE_S = {"type": ["string", "null"]}


def _list_of(key: str, item: dict[str, Any]) -> dict[str, Any]:
    return _obj(
        {
            key: _array(item),
            "nextPageToken": {
                "type": "string",
                "description": "absent or empty on the last page; a page may be short (it is "
                "also bounded by bytes) while more follow",
            },
        }
    )


_FIELD_VIOLATIONS = _obj(
    {
        "@type": {"const": "type.googleapis.com/google.rpc.BadRequest"},
        "fieldViolations": _array(_obj({"field": _S, "description": _S})),
    },
    ("@type",),
)

_ADMISSION_RULE = _obj(
    {
        "evaluationMode": {
            "type": "string",
            "enum": ["ALWAYS_ALLOW", "REQUIRE_ATTESTATION", "ALWAYS_DENY"],
        },
        "requireAttestationsBy": _STRINGS,
        "enforcementMode": {
            "type": "string",
            "enum": ["ENFORCED_BLOCK_AND_AUDIT_LOG", "DRYRUN_AUDIT_LOG_ONLY"],
        },
        "chainproofChecks": {
            "type": "object",
            "description": "chainproof's own checks (docs/policy.md): vulnerabilities, "
            "provenance, CEL, SBOM, VEX, packages",
        },
    },
    ("evaluationMode", "enforcementMode"),
)

_RULES = {"type": "object", "additionalProperties": ref("AdmissionRule")}

_POLICY_PROPERTIES = {
    "name": _S,
    "description": _S,
    "globalPolicyEvaluationMode": {"type": "string", "enum": ["ENABLE", "DISABLE"]},
    "admissionWhitelistPatterns": _array(_obj({"namePattern": _S}, ("namePattern",))),
    "defaultAdmissionRule": ref("AdmissionRule"),
    "clusterAdmissionRules": _RULES,
    "kubernetesNamespaceAdmissionRules": _RULES,
    "kubernetesServiceAccountAdmissionRules": _RULES,
    "istioServiceIdentityAdmissionRules": _RULES,
    "etag": {"type": "string", "description": "send the one read back to refuse stale writes"},
}

_PUBLIC_KEY = _obj(
    {
        "id": _S,
        "comment": _S,
        "asciiArmoredPgpPublicKey": _S,
        "pkixPublicKey": _obj({"publicKeyPem": _S, "signatureAlgorithm": _S}),
    }
)

_ATTESTOR_PROPERTIES = {
    "name": _S,
    "description": _S,
    "userOwnedGrafeasNote": _obj(
        {
            "noteReference": _S,
            "publicKeys": _array(ref("AttestorPublicKey")),
            "delegationServiceAccountEmail": _S,
        },
        ("noteReference",),
    ),
    "evidenceSource": {"type": "string", "enum": ["SCRIBE", "REGISTRY", "BOTH"]},
    "keylessIdentities": _array({"type": "object"}),
    "requireSignedChildren": _BOOL,
    "etag": _S,
}

_REQUIREMENT = _obj(
    {
        "kind": _S,
        "name": _S,
        "passed": _BOOL,
        "reason": _S,
        "occurrences": _STRINGS,
        "keyIds": _STRINGS,
    },
    ("kind", "name", "passed", "reason"),
)

_IMAGE_DECISION = _obj(
    {
        "image": _S,
        "reference": _NULLABLE_S,
        "outcome": _S,
        "rule": _obj(
            {
                "scope": _S,
                "key": _NULLABLE_S,
                "evaluationMode": _NULLABLE_S,
                "enforcementMode": _NULLABLE_S,
                "why": _S,
                "evidenceFrom": _STRINGS,
            }
        ),
        "requirements": _array(ref("Requirement")),
    },
    ("image", "outcome", "rule", "requirements"),
)

_DECISION_PROPERTIES = {
    "outcome": _S,
    "allowed": _BOOL,
    "evaluatedAt": _S,
    "policy": _S,
    "policyEtag": _S,
    "images": _array(ref("ImageDecision")),
}

_IAM_POLICY = _obj(
    {
        "version": _INT,
        "bindings": _array(_obj({"role": _S, "members": _STRINGS}, ("role", "members"))),
        "etag": _S,
    }
)

_TOKEN = _obj(
    {
        "name": _S,
        "project": _S,
        "role": _S,
        "member": _S,
        "createdBy": _S,
        "createTime": _NULLABLE_S,
        "expireTime": _NULLABLE_S,
        "revokeTime": _NULLABLE_S,
    },
    ("name", "project", "role", "member"),
)

_FINDING = _obj(
    {
        "id": _S,
        "vulnerability": _S,
        "source": _S,
        "severity": _S,
        "package": _S,
        "version": _S,
        "fixedVersion": _S,
        "fixAvailable": _BOOL,
        "vex": {"description": "what VEX says of the finding, when anything"},
        "vexResolved": _BOOL,
        "resolvedBy": {"description": "the VEX statement that resolves it, when one does"},
        "occurrence": _S,
    },
    ("id", "source", "occurrence"),
)


_SUBSCRIPTION_FILTER = {
    "description": _S,
    "kinds": {
        **_STRINGS,
        "description": "resource kinds (occurrence, note, attestor, policy, "
        "decision, violation, breakglass); empty: every kind",
    },
    "eventTypes": {**_STRINGS, "description": "event types (occurrence.created, …); empty: all"},
}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": _obj(
        {
            "code": {"type": "integer", "description": "the gRPC code number (google.rpc.Code)"},
            "message": _S,
            "details": _array(ref("ErrorDetail")),
            "error": _obj(
                {
                    "code": {"type": "integer", "description": "the HTTP status"},
                    "message": _S,
                    "status": {"type": "string", "description": "the gRPC code name"},
                    "details": _array(ref("ErrorDetail")),
                },
                ("code", "message", "status", "details"),
            ),
        },
        ("code", "message", "details", "error"),
        description="Every error: the Grafeas gateway shape and the Google API shape at once.",
    ),
    "ErrorDetail": _FIELD_VIOLATIONS,
    "Empty": {"type": "object", "additionalProperties": False},
    "Project": _obj({"name": {"type": "string", "pattern": "^projects/[^/]+$"}}, ("name",)),
    "ListProjectsResponse": _list_of("projects", ref("Project")),
    "BatchCreateNotesRequest": _obj(
        {"notes": {"type": "object", "additionalProperties": ref("grafeas.v1.Note")}},
        ("notes",),
        description="note ID → note, 1 to 1,000 of them, created in one transaction",
    ),
    "BatchCreateOccurrencesRequest": _obj(
        {"occurrences": _array(ref("grafeas.v1.Occurrence"))},
        ("occurrences",),
        description="1 to 1,000 occurrences, created in one transaction",
    ),
    "AdmissionRule": _ADMISSION_RULE,
    "Policy": _obj(_POLICY_PROPERTIES, ("defaultAdmissionRule",)),
    "StoredPolicy": _obj(
        {**_POLICY_PROPERTIES, "updateTime": _TIME},
        ("name", "defaultAdmissionRule", "updateTime", "etag"),
    ),
    "AttestorPublicKey": _PUBLIC_KEY,
    "Attestor": _obj(_ATTESTOR_PROPERTIES),
    "StoredAttestor": _obj(
        {**_ATTESTOR_PROPERTIES, "updateTime": _TIME}, ("name", "updateTime", "etag")
    ),
    "ListAttestorsResponse": _list_of("attestors", ref("StoredAttestor")),
    "Requirement": _REQUIREMENT,
    "ImageDecision": _IMAGE_DECISION,
    "EvaluateRequest": _obj(
        {
            "images": {"type": "array", "items": _S, "minItems": 1},
            "cluster": _S,
            "namespace": _S,
            "serviceAccount": _S,
        },
        ("images",),
    ),
    "KritisResource": _obj(
        {
            "apiVersion": {"const": "kritis.grafeas.io/v1beta1"},
            "kind": {
                "enum": ["ImageSecurityPolicy", "GenericAttestationPolicy", "AttestationAuthority"]
            },
            "metadata": _obj({"name": _S, "namespace": _S}, ("name",)),
            "spec": {"type": "object"},
        },
        ("apiVersion", "kind", "metadata", "spec"),
        description="one Kritis resource as its Kubernetes YAML holds it, in JSON "
        "(docs/policy.md#kritis-resources)",
    ),
    "EvaluateKritisRequest": _obj(
        {
            "images": {"type": "array", "items": _S, "minItems": 1},
            "cluster": _S,
            "namespace": _S,
            "serviceAccount": _S,
            "resources": {"type": "array", "items": ref("KritisResource"), "minItems": 1},
        },
        ("images", "resources"),
    ),
    "Evaluation": _obj(
        {**_DECISION_PROPERTIES, "explanation": _S},
        ("outcome", "allowed", "evaluatedAt", "images", "explanation"),
    ),
    "DecisionRecord": _obj(
        {
            "name": _S,
            "time": _TIME,
            "images": _STRINGS,
            "requestUid": _S,
            "cluster": _S,
            "namespace": _S,
            "workload": _S,
            "operation": _S,
            "outcome": _S,
            "breakglass": _BOOL,
            "dryRun": _BOOL,
            "message": _S,
            "decision": _obj(_DECISION_PROPERTIES),
            "tagResolutions": {"type": "object", "additionalProperties": _S},
            "logDegraded": {
                "type": "object",
                "description": "present when a value could not be stored as it was "
                "(docs/admission.md, decision log)",
            },
        },
        ("name", "time", "images"),
    ),
    "ListDecisionsResponse": _list_of("decisions", ref("DecisionRecord")),
    "IamPolicy": _IAM_POLICY,
    "SetIamPolicyRequest": _obj({"policy": ref("IamPolicy"), "updateMask": _S}, ("policy",)),
    "GetIamPolicyRequest": _obj({"options": {"type": "object"}}),
    "TestIamPermissionsRequest": _obj({"permissions": _STRINGS}),
    "TestIamPermissionsResponse": _obj({"permissions": _STRINGS}),
    "ApiToken": _TOKEN,
    "CreateTokenRequest": _obj({"name": _S, "role": _S, "expireTime": _TIME}, ("name", "role")),
    "CreatedToken": {
        "allOf": [ref("ApiToken"), _obj({"secret": _S}, ("secret",))],
        "description": "the secret appears in this response only",
    },
    "ListTokensResponse": _obj({"tokens": _array(ref("ApiToken"))}, ("tokens",)),
    "AuditLog": _obj(
        {
            "name": _S,
            "time": _TIME,
            "principal": _S,
            "permission": _S,
            "resource": _S,
            "outcome": _S,
        },
        ("name", "time", "principal", "permission", "resource", "outcome"),
    ),
    "ListAuditLogsResponse": _list_of("auditLogs", ref("AuditLog")),
    "SubscriptionRequest": _obj(
        {
            **_SUBSCRIPTION_FILTER,
            "http": _obj(
                {
                    "url": _S,
                    "secret": {
                        **_S,
                        "description": "whsec_…; made by the server when "
                        "absent, and then shown once, in the answer",
                    },
                },
                ("url",),
            ),
            "nats": _obj({"subject": _S}, ("subject",)),
        },
        description="exactly one of http and nats",
    ),
    "Subscription": _obj(
        {
            "name": _S,
            **_SUBSCRIPTION_FILTER,
            "createTime": _TIME,
            "http": _obj({"url": _S, "secret": {**_S, "description": "in a create's answer only"}}),
            "nats": _obj({"subject": _S}),
            "internal": _S,
        },
        ("name", "description", "kinds", "eventTypes", "createTime"),
    ),
    "Violation": _obj(
        {
            "name": _S,
            "id": _S,
            "project": _S,
            "cluster": _S,
            "state": {"enum": ["OPEN", "CLOSED"]},
            "cause": {**_S, "description": "what made chainproof judge the pod again"},
            "openTime": _TIME,
            "closeTime": _NULLABLE_TIME,
            "closeReason": _S,
            "actions": _array(_obj({"action": _S, "time": _TIME, "result": _S, "attempt": _INT})),
            "podEvent": _obj(
                {
                    "podNamespace": _S,
                    "pod": _S,
                    "workload": _obj({"kind": _S, "name": _S}),
                    "verdict": _S,
                    "explanation": _S,
                    "images": _array(
                        _obj(
                            {
                                "image": _S,
                                "container": _S,
                                "result": {"enum": ["ALLOW", "DENY"]},
                                "description": _S,
                                "checkResults": _array(
                                    _obj(
                                        {
                                            "checkName": _S,
                                            "checkType": _S,
                                            "verdict": _S,
                                            "explanation": _S,
                                        }
                                    )
                                ),
                            }
                        )
                    ),
                },
                ("podNamespace", "pod", "verdict", "images"),
            ),
        },
        ("name", "id", "project", "cluster", "state", "openTime", "podEvent"),
        description="a running pod the policy denies now, shaped like Binary "
        "Authorization's continuous-validation pod_event",
    ),
    "ListViolationsResponse": _list_of("violations", ref("Violation")),
    "ListSubscriptionsResponse": _obj(
        {"subscriptions": _array(ref("Subscription"))}, ("subscriptions",)
    ),
    "Delivery": _obj(
        {
            "eventId": _S,
            "sequence": _INT,
            "subject": _S,
            "state": {"enum": ["pending", "delivered", "dead"]},
            "attempts": _INT,
            "nextAttemptTime": _NULLABLE_TIME,
            "lastError": _S,
            "doneTime": _NULLABLE_TIME,
        },
        ("eventId", "sequence", "subject", "state", "attempts", "lastError"),
    ),
    "ListDeliveriesResponse": _obj({"deliveries": _array(ref("Delivery"))}, ("deliveries",)),
    "Whoami": _obj(
        {
            "member": _S,
            "authenticated": _BOOL,
            "via": _S,
            "members": _STRINGS,
            "grants": _array(_obj({"project": _S, "role": _S})),
            "expireTime": _TIME,
        },
        ("member", "authenticated", "members", "grants"),
    ),
    "ImportAdvisoriesRequest": _obj(
        {"records": {"type": "array", "items": {"type": "object"}, "minItems": 1}},
        ("records",),
        description="OSV records (https://ossf.github.io/osv-schema/)",
    ),
    "ImportReport": _obj(
        {
            k: _INT
            for k in (
                "imported",
                "replaced",
                "unchanged",
                "withdrawn",
                "olderIgnored",
                "imagesRematched",
                "findingsOpened",
                "findingsClosed",
            )
        }
    ),
    "Advisory": _obj(
        {
            "advisory": {"type": "object"},
            "noteName": _S,
            "affectedImages": _array(
                _obj(
                    {
                        "project": _S,
                        "resource": _S,
                        "occurrence": _S,
                        "package": _S,
                        "version": _S,
                        "fixedVersion": _S,
                    }
                )
            ),
        },
        ("advisory", "noteName", "affectedImages"),
    ),
    "ScanReport": _obj(
        {
            "resource": _S,
            "packages": _INT,
            "findings": _INT,
            "opened": _INT,
            "closed": _INT,
            "kept": _INT,
            "undecided": _array(_obj({"package": _S, "advisory": _S, "reason": _S})),
        },
        ("resource", "packages", "findings"),
    ),
    "Finding": _FINDING,
    "ImageVulnerabilities": _obj(
        {
            "image": _S,
            "sources": {"type": "object", "additionalProperties": _array(ref("Finding"))},
        },
        ("image", "sources"),
        description="deprecated: the findings of images/vulnerabilities, grouped by source",
    ),
    "VulnerabilityPolicyCheckRequest": _obj(
        {"image": _S, "policy": {"type": "object"}}, ("image", "policy")
    ),
    "VulnerabilityPolicyCheck": _obj(
        {
            "image": _S,
            "passed": _BOOL,
            "signed": _BOOL,
            "occurrence": _NULLABLE_S,
            "results": _array(ref("Requirement")),
        },
        ("image", "passed", "results"),
    ),
    "IngestResult": _obj(
        {
            "format": _S,
            "resourceUri": _S,
            "document": _S,
            "created": {"type": "object"},
            "superseded": {},
            "vexApplied": {},
            "warnings": _STRINGS,
            "unchanged": _BOOL,
        },
        ("format", "resourceUri", "document"),
    ),
    "ImagePackages": _obj(
        {"image": _S, "packages": _array({"type": "object"})}, ("image", "packages")
    ),
    "ImageFindings": _obj(
        {"image": _S, "vulnerabilities": _array(ref("Finding"))},
        ("image", "vulnerabilities"),
    ),
    "PackageImages": _obj({"purl": _S, "images": _array({})}, ("purl", "images")),
    "RegistrySource": _obj(
        {
            "name": {**_S, "description": "projects/{project}/registryEvidence/{occurrence_id}"},
            "occurrence": {**_S, "description": "the occurrence recorded"},
            "resource": {**_S, "description": "the image, registry/repo@sha256:…"},
            "attestor": {**_S, "description": "the attestor whose key verified it"},
            "source": {
                **_S,
                "description": "the .sig, .att or referrer manifest it was read from, "
                "registry/repo@sha256:…",
            },
            "layer": {**_S, "description": "the digest of the layer that carried it"},
            "recordedAt": _TIME,
        },
        ("name", "occurrence", "resource", "attestor", "source", "layer", "recordedAt"),
    ),
    "ImageRegistrySources": _obj(
        {"image": _S, "registryEvidence": _array(ref("RegistrySource"))},
        ("image", "registryEvidence"),
    ),
    "Health": _obj({"status": _S}, ("status",)),
    "AdmissionReview": _obj(
        {
            "apiVersion": {
                "type": "string",
                "enum": ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"],
            },
            "kind": {"const": "AdmissionReview"},
            "request": {"type": "object"},
            "response": _obj(
                {
                    "uid": _S,
                    "allowed": _BOOL,
                    "status": _obj({"code": _INT, "reason": _S, "message": _S}),
                    "warnings": _STRINGS,
                    "auditAnnotations": {"type": "object", "additionalProperties": _S},
                    "patchType": _S,
                    "patch": _S,
                },
                ("uid", "allowed"),
            ),
        },
        ("apiVersion", "kind"),
    ),
    "ImageReview": _obj(
        {
            "apiVersion": {"const": "imagepolicy.k8s.io/v1alpha1"},
            "kind": {"const": "ImageReview"},
            "spec": _obj(
                {
                    "containers": _array(_obj({"image": _S})),
                    "annotations": {"type": "object", "additionalProperties": _S},
                    "namespace": _S,
                }
            ),
            "status": _obj(
                {
                    "allowed": _BOOL,
                    "reason": _S,
                    "auditAnnotations": {"type": "object", "additionalProperties": _S},
                }
            ),
        },
        ("apiVersion", "kind"),
    ),
    "Impact": _obj(
        {
            "query": {"type": "object", "additionalProperties": _S},
            "clusters": _STRINGS,
            "images": _array(
                _obj(
                    {
                        "image": _S,
                        "because": _STRINGS,
                        "workloads": _array(
                            _obj(
                                {
                                    "cluster": _S,
                                    "namespace": _S,
                                    "workload": _S,
                                    "container": _S,
                                    "serviceAccount": _S,
                                    "pods": _INT,
                                    "since": _TIME,
                                    "verdict": {
                                        "enum": ["allowed", "denied", "dry-run-would-deny"]
                                    },
                                    "denied": _BOOL,
                                    "reasons": _STRINGS,
                                },
                                ("cluster", "namespace", "workload", "container", "verdict"),
                            )
                        ),
                    },
                    ("image", "because", "workloads"),
                )
            ),
            "affectedWorkloads": _INT,
            "deniedWorkloads": _INT,
            "resolvedByVex": _array(_obj({"image": _S, "statement": _S})),
            "notRunning": _INT,
            "complete": {
                "type": "boolean",
                "description": "false when more affected images follow: ask again with "
                "nextPageToken",
            },
            "nextPageToken": _S,
        },
        ("query", "images", "complete", "nextPageToken"),
    ),
    "ReplayRequest": _obj(
        {
            "policy": {"type": "object", "description": "the proposed policy"},
            "since": {"type": "string", "description": "7d, 24h, 30m, or RFC 3339 (default 7d)"},
            "running": {"type": "boolean", "description": "also the running pods (default true)"},
        },
        ("policy",),
    ),
    "DiffRequest": _obj(
        {
            "a": {"type": "object"},
            "b": {"type": "object"},
            "since": _S,
            "running": _BOOL,
        },
        ("a", "b"),
    ),
    "ReplayReport": _obj(
        {
            "since": _S,
            "admissions": _INT,
            "running": _INT,
            "judged": _INT,
            "images": _INT,
            "changed": _INT,
            "byTransition": {"type": "object", "additionalProperties": _INT},
            "changes": _array({"type": "object"}),
            "changesTruncated": _BOOL,
            "policyBefore": _S,
            "policyAfter": _S,
            "ruleChanges": _array({"type": "object"}),
            "coverageShifts": _array({"type": "object"}),
            "notes": _STRINGS,
        },
        ("admissions", "running", "judged", "changed", "changes", "changesTruncated"),
    ),
    "Coverage": _obj(
        {
            "uncovered": _INT,
            "total": _INT,
            "items": _array(
                _obj(
                    {
                        "kind": {"enum": ["namespace", "service-account", "image"]},
                        "name": _S,
                        "scope": _S,
                        "rule": _S,
                        "evaluationMode": _S,
                        "specific": _BOOL,
                        "where": _STRINGS,
                    },
                    ("kind", "name", "scope", "rule", "specific"),
                )
            ),
        },
        ("uncovered", "total", "items"),
    ),
}
