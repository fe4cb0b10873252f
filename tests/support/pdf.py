"""Hand-made PDFs for upload tests: numbered objects written out with a cross-reference table
whose offsets are computed, so that a real reader (pypdf) accepts them."""

from __future__ import annotations

from collections.abc import Sequence


def pdf_file(objects: Sequence[bytes]) -> bytes:
    """A PDF of these objects (object 1 the catalog), numbered from 1 in order."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
