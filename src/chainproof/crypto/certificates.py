"""Certificates for the admission webhook: a private CA and a serving certificate for the
webhook's Service, made with ``cryptography`` (ECDSA P-256).

The API server checks the serving certificate against the ``caBundle`` of the webhook
configuration and needs the Service's DNS name (``NAME.NS.svc``) in its subjectAltName;
:func:`issue_certificates` writes every name the Service answers to, plus any extra DNS name
or IP address. Reusing the CA on renewal keeps an applied ``caBundle`` valid.
:func:`check_ca_bundle` says whether bytes hold a CA certificate at all. Pure: keys and
certificates are returned as PEM, ``now`` is given; the CLI writes the files.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chainproof.domain.timestamps import CLOCK_SKEW
from chainproof.domain.webhook_config import kubernetes_name, service_dns_names
from chainproof.errors import InvalidArgument


@dataclass(frozen=True, slots=True)
class IssuedCertificates:
    ca_cert_pem: bytes
    ca_key_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    not_after: dt.datetime


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    """Only the usages named; a CA signs certificates, a serving key signs handshakes."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _new_ca(now: dt.datetime, days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chainproof webhook CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue_certificates(
    service: str,
    namespace: str,
    *,
    days: int = 365,
    extra_sans: tuple[str, ...] = (),
    ca: tuple[bytes, bytes] | None = None,
    ca_days: int = 3650,
    now: dt.datetime,
) -> IssuedCertificates:
    """A serving certificate for ``service.namespace.svc``, signed by ``ca`` or a new CA.

    ``ca`` is ``(certificate PEM, key PEM)``; reusing it on renewal keeps the ``caBundle`` of
    the webhook configuration valid. ``extra_sans`` may be DNS names or IP addresses.
    """
    service = kubernetes_name(service, "service name")
    namespace = kubernetes_name(namespace, "namespace")
    if not 1 <= days <= 3650:
        raise InvalidArgument(f"--days must be between 1 and 3650, got {days}")
    if ca is None:
        ca_cert, ca_key = _new_ca(now, ca_days)
    else:
        try:
            ca_cert = x509.load_pem_x509_certificate(ca[0])
            loaded = serialization.load_pem_private_key(ca[1], password=None)
        except ValueError as exc:
            raise InvalidArgument(f"the existing CA cannot be read: {exc}") from None
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise InvalidArgument(
                "the existing CA key is not an EC key: delete it to make a new CA"
            )
        ca_key = loaded
        if ca_cert.not_valid_after_utc <= now + dt.timedelta(days=days):
            raise InvalidArgument(
                f"the existing CA expires on {ca_cert.not_valid_after_utc:%Y-%m-%d}, before the "
                "serving certificate would: use --new-ca (and re-apply the manifest)"
            )

    dns: list[str] = service_dns_names(service, namespace)
    ips: list[str] = []
    for san in extra_sans:
        value = san.strip()
        if not value:
            continue
        try:
            ips.append(str(ipaddress.ip_address(value)))
        except ValueError:
            dns.append(value)
    dns = list(dict.fromkeys(dns))
    ips = list(dict.fromkeys(ips))

    key = ec.generate_private_key(ec.SECP256R1())
    not_after = now + dt.timedelta(days=days)
    alt_names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    alt_names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[2])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return IssuedCertificates(
        ca_cert_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        ca_key_pem=_private_pem(ca_key),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=_private_pem(key),
        dns_names=tuple(dns),
        ip_addresses=tuple(ips),
        not_after=not_after,
    )


def check_ca_bundle(data: bytes, source: str) -> bytes:
    """``data`` if it holds at least one PEM certificate; else InvalidArgument naming ``source``."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise InvalidArgument(
            f"{source} holds no PEM certificate: pass the ca.crt written by "
            "`chainproof webhook certs`"
        )
    return data
