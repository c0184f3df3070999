"""The ``cel`` check: a CEL expression over the verified statements, compiled when the policy
is parsed, evaluated per image over :func:`cel_activation` (documented in docs/policy.md).

Anything but ``true`` denies: false, an evaluation error, or a value that is not a boolean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import celpy
from celpy.adapter import json_to_cel

from chainproof.errors import InvalidArgument
from chainproof.policy._fields import FieldReader
from chainproof.policy.checks.base import CheckContext, cve_id
from chainproof.policy.checks.provenance import provenance_facts
from chainproof.policy.checks.vulnerabilities import resolved_by_vex
from chainproof.policy.decision import RequirementResult


@dataclass(frozen=True, slots=True)
class CelCheck:
    key: ClassVar[str] = "cel"
    expression: str
    program: Any = field(repr=False, compare=False, hash=False)

    @classmethod
    def parse(cls, checks: FieldReader) -> Self | None:
        expression = checks.string(cls.key)
        if not expression:
            return None
        try:
            return cls.compile(expression)
        except InvalidArgument as exc:
            checks.problems.add(checks.at(cls.key), exc.message)
            return None

    @classmethod
    def compile(cls, expression: str) -> Self:
        """Compile a CEL expression; raise InvalidArgument with the parser's message."""
        env = celpy.Environment()
        try:
            ast = env.compile(expression)
            program = env.program(ast)
        except Exception as exc:  # cel-python raises several unrelated types for bad input
            message = " ".join(str(exc).split())
            raise InvalidArgument(f"CEL expression does not compile: {message}") from exc
        return cls(expression, program)

    def to_dict(self) -> Any:
        return self.expression

    def judge(self, ctx: CheckContext) -> Sequence[RequirementResult]:
        return [self._judge(ctx)]

    def _judge(self, ctx: CheckContext) -> RequirementResult:
        image = ctx.image.canonical
        name = f"CEL expression {self.expression!r}"
        consulted = tuple(a.occurrence for a in ctx.evidence.attestations)
        try:
            result = self.program.evaluate(cel_activation(ctx))
        except Exception as exc:  # evaluation errors are data problems: deny, and say which
            message = " ".join(str(exc).split())
            return RequirementResult(
                "cel",
                name,
                False,
                f"the CEL expression could not be evaluated for {image}: {message}",
                consulted,
            )
        if isinstance(result, Exception):
            return RequirementResult(
                "cel", name, False, f"the CEL expression failed for {image}: {result}", consulted
            )
        if isinstance(result, (celpy.celtypes.BoolType, bool)):
            if bool(result):
                return RequirementResult("cel", name, True, "evaluated to true", consulted)
            return RequirementResult(
                "cel",
                name,
                False,
                f"the CEL expression evaluated to false for {image}: the verified statements "
                "do not satisfy it",
                consulted,
            )
        return RequirementResult(
            "cel",
            name,
            False,
            f"the CEL expression returned {type(result).__name__}, not a boolean: fix the policy",
            consulted,
        )


def cel_activation(ctx: CheckContext) -> dict[str, Any]:
    """The variables a CEL expression sees; documented in docs/policy.md."""
    resolved = resolved_by_vex(ctx.evidence)
    doc: dict[str, Any] = {
        "image": {
            "name": ctx.image.name,
            "registry": ctx.image.registry,
            "repository": ctx.image.repository,
            "tag": ctx.image.tag or "",
            "digest": ctx.image.digest or "",
        },
        "attestations": [
            {
                "attestor": a.attestor,
                "keyId": a.key_id,
                "occurrence": a.occurrence,
                "kind": a.kind.value,
                "predicateType": a.predicate_type or "",
                "statement": _plain(a.statement) if a.statement is not None else {},
                "predicate": _plain(a.predicate) if a.predicate is not None else {},
                "createTime": a.created.isoformat() if a.created else "",
            }
            for a in ctx.evidence.attestations
        ],
        "vulnerabilities": [
            {
                "cve": cve_id(f.cve),
                "severity": f.severity.name,
                "fixAvailable": f.fix_available,
                "package": f.package or "",
                "resolvedByVex": cve_id(f.cve) in resolved,
            }
            for f in ctx.evidence.vulnerabilities
        ],
        "provenance": [
            {"builderId": f.builder_id, "sourceUris": list(f.source_uris)}
            for f in provenance_facts(ctx.evidence)
        ],
        "request": dict(ctx.request),
    }
    return {key: json_to_cel(value) for key, value in doc.items()}


def _plain(value: Any) -> Any:
    """Frozen mappings back to dicts, which is what cel-python's converter understands."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
