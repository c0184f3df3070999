"""The identity a verified client certificate names (mutual TLS).

The TLS layer has already verified the chain against the configured client CA; this module
only reads the name, in this order: a SPIFFE ID (the URI SAN ``spiffe://…``; a certificate
with several is refused, as the SPIFFE X.509-SVID specification requires exactly one), else
the first DNS SAN, else the subject's common name. Members: the SPIFFE ID itself, or
``cert:NAME``.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from chainproof.errors import Unauthenticated
from chainproof.iam.principals import Principal


def principal_from_certificate(cert: x509.Certificate) -> Principal:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        uris: list[str] = []
        dns: list[str] = []
    else:
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        dns = san.get_values_for_type(x509.DNSName)
    spiffe = [u for u in uris if u.lower().startswith("spiffe://")]
    if len(spiffe) > 1:
        raise Unauthenticated(
            "client certificate carries several SPIFFE IDs; an X.509-SVID carries exactly one"
        )
    if spiffe:
        return Principal(member=spiffe[0], via="mtls")
    if dns:
        return Principal(member=f"cert:{dns[0]}", via="mtls")
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns and isinstance(cns[0].value, str) and cns[0].value:
        return Principal(member=f"cert:{cns[0].value}", via="mtls")
    raise Unauthenticated(
        "client certificate names no identity: expected a spiffe:// URI SAN, a DNS SAN or a "
        "subject common name"
    )


def principal_from_pem(pem: bytes) -> Principal:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise Unauthenticated("client certificate cannot be parsed") from exc
    return principal_from_certificate(cert)


def principal_from_der(der: bytes) -> Principal:
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise Unauthenticated("client certificate cannot be parsed") from exc
    return principal_from_certificate(cert)
