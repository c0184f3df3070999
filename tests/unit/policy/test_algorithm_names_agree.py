"""The attestor schema accepts exactly the PKIX algorithms that crypto/ can verify."""

from chainproof.crypto.pkix import ALGORITHMS
from chainproof.policy.attestors import SignatureAlgorithm


def test_schema_and_verifier_know_the_same_algorithms() -> None:
    assert {a.value for a in SignatureAlgorithm} == set(ALGORITHMS)
