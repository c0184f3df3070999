"""CVSS vectors to scores and Grafeas severities, computed by the maintained ``cvss`` library.

OSV carries severity as vectors (``severity[].type`` ``CVSS_V2`` / ``CVSS_V3`` / ``CVSS_V4``
and ``score`` the vector string), never as numbers; the base score and its qualitative rating
are computed here from the vector, so a record cannot claim a score its vector does not give.
The newest CVSS version a record carries wins (v4 over v3 over v2), record-level severity
over per-package severity. A record with no vector, or only vectors that do not parse, has
severity ``SEVERITY_UNSPECIFIED`` and the reason is kept (a policy may treat "unknown" as it
likes; chainproof's vulnerability checks treat it as failing a threshold below CRITICAL).

The Go vulnerability database carries no CVSS at all; its records are therefore unspecified
here, which is honest: it is the policy that decides how to hold them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from chainproof.vuln.osv import Advisory, Severity

# Grafeas' Severity enum names, lowest first; the qualitative CVSS ratings map onto them
# ("None" → MINIMAL, as Container Analysis does).
_RATINGS = {
    "none": "MINIMAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "critical": "CRITICAL",
}
_RANK = {"CVSS_V4": 3, "CVSS_V3": 2, "CVSS_V2": 1}


@dataclass(frozen=True, slots=True)
class Score:
    """A computed CVSS base score, its Grafeas severity name, and the vector it came from."""

    severity: str  # a grafeas.v1.Severity name: MINIMAL … CRITICAL, or SEVERITY_UNSPECIFIED
    base_score: float | None
    version: str | None  # "CVSS_V2" | "CVSS_V3" | "CVSS_V4"
    vector: str | None
    problems: tuple[str, ...] = ()


UNSPECIFIED = Score("SEVERITY_UNSPECIFIED", None, None, None)


@dataclass(frozen=True, slots=True)
class _Item:
    type: str
    score: str


def score_vector(severity: Severity) -> Score:
    """Score one ``severity[]`` item; a vector that does not parse gives an explained miss."""
    return _score(severity.type, severity.score)


@functools.lru_cache(maxsize=16_384)  # a database repeats the same vectors many times over
def _score(kind: str, vector: str) -> Score:
    severity = _Item(kind, vector)
    try:
        if severity.type == "CVSS_V4":
            c4 = CVSS4(severity.score)
            base, rating = float(c4.base_score), str(c4.severity)
        elif severity.type == "CVSS_V3":
            c3 = CVSS3(severity.score)
            base, rating = float(c3.scores()[0]), str(c3.severities()[0])
        elif severity.type == "CVSS_V2":
            c2 = CVSS2(severity.score)
            base, rating = float(c2.scores()[0]), str(c2.severities()[0])
        else:
            return Score(
                "SEVERITY_UNSPECIFIED",
                None,
                None,
                None,
                (f"severity type {severity.type!r} is not a CVSS vector; not scored",),
            )
    except (CVSSError, ValueError, KeyError, IndexError) as exc:
        return Score(
            "SEVERITY_UNSPECIFIED",
            None,
            None,
            None,
            (f"{severity.type} vector {severity.score!r} does not parse: {exc}",),
        )
    return Score(
        _RATINGS.get(rating.lower(), "SEVERITY_UNSPECIFIED"), base, severity.type, severity.score
    )


def best_score(severities: Iterable[Severity]) -> Score:
    """The score of the newest CVSS version present (ties: the higher score)."""
    problems: list[str] = []
    best: Score | None = None
    for item in severities:
        scored = score_vector(item)
        problems.extend(scored.problems)
        if scored.version is None:
            continue
        if best is None or (_RANK[scored.version], scored.base_score or 0.0) > (
            _RANK[best.version or "CVSS_V2"],
            best.base_score or 0.0,
        ):
            best = scored
    if best is None:
        return Score("SEVERITY_UNSPECIFIED", None, None, None, tuple(problems))
    return Score(best.severity, best.base_score, best.version, best.vector, tuple(problems))


def advisory_score(advisory: Advisory) -> Score:
    """The record's own severity; else the highest per-package one (``affected[].severity``)."""
    own = best_score(advisory.severity)
    if own.version is not None:
        return own
    per_package = [best_score(a.severity) for a in advisory.affected if a.severity]
    scored = [s for s in per_package if s.version is not None]
    if not scored:
        problems = own.problems + tuple(p for s in per_package for p in s.problems)
        return Score("SEVERITY_UNSPECIFIED", None, None, None, problems)
    return max(scored, key=lambda s: (s.base_score or 0.0, _RANK[s.version or "CVSS_V2"]))
