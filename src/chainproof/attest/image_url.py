"""The seed 000 payload: the image URL with its digest, as plain text.

Content type ``application/vnd.gcr.image.url.v1``: the attestor signs (usually clearsigns with
``gpg --clearsign``) a file holding one line such as ``gcr.io/proj/app@sha256:…``, with or
without ``https://``. Clearsigning drops the final line ending, other forms keep it, so
surrounding whitespace is ignored. This module owns parsing and building that text and saying
where it disagrees with the image the caller trusts.
"""

from __future__ import annotations

from dataclasses import dataclass

from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.errors import InvalidArgument

__all__ = [
    "IMAGE_URL_CONTENT_TYPE",
    "ImageUrlPayload",
    "build_image_url_payload",
    "parse_image_url_payload",
]

IMAGE_URL_CONTENT_TYPE = "application/vnd.gcr.image.url.v1"


@dataclass(frozen=True, slots=True)
class ImageUrlPayload:
    """The signed URL as written, and the image it names."""

    text: str
    reference: ImageReference

    format_name = "image-url"

    def mismatches(self, image: ImageReference) -> tuple[str, ...]:
        reasons: list[str] = []
        if self.reference.digest != image.digest:
            reasons.append(f"payload names {self.reference.digest} but the image is {image.digest}")
        if self.reference.name != image.name:
            reasons.append(
                f"payload names repository {self.reference.name} but the image is in {image.name}"
            )
        return tuple(reasons)


def parse_image_url_payload(data: bytes) -> ImageUrlPayload:
    """Parse the signed text; it must be one image reference that carries a sha256 digest."""
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise InvalidArgument("image URL payload is not UTF-8 text") from exc
    if not text or any(ch.isspace() for ch in text):
        raise InvalidArgument(
            "image URL payload must be exactly one image reference such as "
            "gcr.io/proj/app@sha256:<hex>, on one line"
        )
    reference = parse_image_reference(text)
    if reference.digest is None:
        raise InvalidArgument(
            f"image URL payload {text!r} has no digest: an attestation must name "
            "registry/repository@sha256:<hex>, never only a tag"
        )
    return ImageUrlPayload(text=text, reference=reference)


def build_image_url_payload(image: ImageReference) -> bytes:
    """The text to sign for ``image`` (canonical, one line, newline-terminated)."""
    if image.digest is None:
        raise InvalidArgument(f"image {image} has no digest: sign registry/repository@sha256:<hex>")
    return f"{image.name}@{image.digest}\n".encode()
