"""The ``cel`` check: a CEL expression over the verified statements, compiled when the policy
is parsed, evaluated per image over :func:`cel_activation` (documented in docs/policy.md).

The runtime is ``cel-expr-python``, Google's C++ CEL implementation (ADR 0130): an expression
is type-checked against the declared variables when the policy is parsed (an undeclared name
is a policy error, not a denial at admission time) and evaluates in microseconds.

Anything but ``true`` denies: false, an evaluation error, or a value that is not a boolean.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from cel_expr_python import cel

from chainproof.errors import InvalidArgument
from chainproof.policy._fields import FieldReader
from chainproof.policy.checks.base import CheckContext, cve_id
from chainproof.policy.checks.provenance import provenance_facts
from chainproof.policy.checks.vulnerabilities import resolving_statement
from chainproof.policy.decision import RequirementResult

#: The variables an expression may use; their shapes are in docs/policy.md. They are dynamic
#: (JSON-like) values, so a field that a statement lacks is an evaluation error (a denial).
VARIABLES = ("image", "attestations", "vulnerabilities", "provenance", "request")

_ENVS: dict[frozenset[str], Any] = {}


def _env(variables: frozenset[str] = frozenset(VARIABLES)) -> Any:
    # Built on first use and shared: an environment is immutable.
    env = _ENVS.get(variables)
    if env is None:
        env = _ENVS[variables] = cel.NewEnv(variables=dict.fromkeys(variables, cel.Type.DYN))
    return env


def _referenced(expression: str) -> frozenset[str]:
    """The variables ``expression`` uses: those without which it no longer compiles.

    Exact, because the compiler resolves every name: a variable is needed if and only if
    dropping its declaration leaves a reference undeclared. Evaluation then builds only
    these, so a check on ``attestations`` never pays for converting 500 findings.
    """
    everything = frozenset(VARIABLES)
    needed = set()
    for name in VARIABLES:
        try:
            _env(everything - {name}).compile(expression)
        except RuntimeError:
            needed.add(name)
    return frozenset(needed)


@dataclass(frozen=True, slots=True)
class CelCheck:
    key: ClassVar[str] = "cel"
    expression: str
    program: Any = field(repr=False, compare=False, hash=False)
    variables: frozenset[str] = field(default=frozenset(VARIABLES), compare=False, hash=False)

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
        """Compile a CEL expression; raise InvalidArgument with the compiler's message."""
        try:
            program = _env().compile(expression)
        except RuntimeError as exc:  # the C++ runtime reports every compile error this way
            raise InvalidArgument(f"CEL expression does not compile: {_one_line(exc)}") from exc
        return cls(expression, program, _referenced(expression))

    def to_dict(self) -> Any:
        return self.expression

    def judge(self, ctx: CheckContext) -> Sequence[RequirementResult]:
        return [self._judge(ctx)]

    def _judge(self, ctx: CheckContext) -> RequirementResult:
        image = ctx.image.canonical
        name = f"CEL expression {self.expression!r}"
        consulted = tuple(a.occurrence for a in ctx.evidence.attestations)
        try:
            value = self.program.eval(data=cel_activation(ctx, self.variables))
            kind = value.type()
            result = value.value()
        except Exception as exc:  # conversion or runtime failures are data problems: deny
            return RequirementResult(
                "cel",
                name,
                False,
                f"the CEL expression could not be evaluated for {image}: {_one_line(exc)}",
                consulted,
            )
        if kind == cel.Type.ERROR:
            return RequirementResult(
                "cel",
                name,
                False,
                f"the CEL expression could not be evaluated for {image}: {_one_line(result)}",
                consulted,
            )
        if kind == cel.Type.BOOL:
            if result is True:
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
            f"the CEL expression returned {kind.name().lower()}, not a boolean: fix the policy",
            consulted,
        )


def cel_activation(
    ctx: CheckContext, variables: frozenset[str] = frozenset(VARIABLES)
) -> dict[str, Any]:
    """The variables a CEL expression sees (those of ``variables``); see docs/policy.md."""
    return {name: _BUILDERS[name](ctx) for name in variables}


def _image(ctx: CheckContext) -> Any:
    return {
        "name": ctx.image.name,
        "registry": ctx.image.registry,
        "repository": ctx.image.repository,
        "tag": ctx.image.tag or "",
        "digest": ctx.image.digest or "",
    }


def _attestations(ctx: CheckContext) -> Any:
    return [
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
    ]


def _vulnerabilities(ctx: CheckContext) -> Any:
    return [
        {
            "cve": cve_id(f.cve),
            "severity": f.severity.name,
            "fixAvailable": f.fix_available,
            "package": f.package or "",
            "resolvedByVex": resolving_statement(ctx.evidence, f, ctx.image) is not None,
        }
        for f in ctx.evidence.vulnerabilities
    ]


def _provenance(ctx: CheckContext) -> Any:
    return [
        {"builderId": f.builder_id, "sourceUris": list(f.source_uris)}
        for f in provenance_facts(ctx.evidence)
    ]


def _request(ctx: CheckContext) -> Any:
    return dict(ctx.request)


_BUILDERS: dict[str, Callable[[CheckContext], Any]] = {
    "image": _image,
    "attestations": _attestations,
    "vulnerabilities": _vulnerabilities,
    "provenance": _provenance,
    "request": _request,
}


def _plain(value: Any) -> Any:
    """Frozen mappings back to dicts and lists, the only containers the runtime accepts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _one_line(message: object) -> str:
    return " ".join(str(message).split())
