"""CycloneDX XML → the BOM's JSON form, through cyclonedx-python-lib.

defusedxml parses first and refuses DTDs, entity declarations and external references (billion
laughs, XXE); cyclonedx-python-lib then reads the element tree into its model and writes the
same BOM as CycloneDX JSON 1.6, which :mod:`chainproof.ingest.cyclonedx` reads.
"""

from __future__ import annotations

import re
import warnings
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from chainproof.ingest.jsonload import check_size
from chainproof.ingest.model import DocumentError

_NAMESPACE = re.compile(r"\{http://cyclonedx\.org/schema/bom/(1\.[0-9])\}bom")
FMT = "CycloneDX XML"


def xml_to_json(raw: bytes) -> str:
    check_size(FMT, raw)
    try:
        root = SafeET.fromstring(raw, forbid_dtd=True)
    except ParseError as exc:
        line, column = exc.position
        raise DocumentError(FMT, f"line {line} column {column}", str(exc).split(":")[0]) from None
    except DefusedXmlException as exc:
        raise DocumentError(FMT, "", f"refused: {exc}") from None
    m = _NAMESPACE.fullmatch(root.tag)
    if m is None:
        raise DocumentError(FMT, "root element", f"expected a CycloneDX <bom>, got <{root.tag}>")
    from cyclonedx.model.bom import Bom
    from cyclonedx.output.json import JsonV1Dot6

    # The library warns about deprecated fields and incomplete graphs of the BOMs it reads;
    # those are the producer's business, not ours.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            bom = Bom.from_xml(root)  # type: ignore[attr-defined]
        except Exception as exc:  # the library raises many unrelated types on bad input
            raise DocumentError(FMT, "", f"not a valid CycloneDX {m.group(1)} BOM: {exc}") from None
        out: str = JsonV1Dot6(bom).output_as_string()
    # The JSON is 1.6 by construction; keep the version the document declared.
    return out.replace('"specVersion": "1.6"', f'"specVersion": "{m.group(1)}"', 1)
