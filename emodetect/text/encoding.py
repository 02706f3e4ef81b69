"""Bytes to text for every text file emodetect reads (text --file, CSVs, subtitles).

UTF-8 (with or without a BOM) and UTF-16 with a BOM decode as they say. UTF-16 without a BOM is
valid UTF-8 when its text is ASCII (`\\x00h\\x00i`), so it used to be read as text with a NUL
before every letter (issue 34, point 12): it is recognised by where its NULs fall and decoded.
Any other NUL is an error: no text file of ours holds one.
"""

from __future__ import annotations

import codecs

from emodetect.errors import InputError

# Share of one byte lane that must be NUL to call a BOM-less file UTF-16: Latin text puts a NUL in
# every other byte; a file with a few stray NULs is not UTF-16.
UTF16_NUL_SHARE = 0.4
# The other lane may hold a few NULs too: a character whose low byte is 0 (U+4E00, U+0100, the low
# surrogate DE00 of 😀) puts one there, and a strict 0 read such a file as text with NULs.
UTF16_OTHER_LANE_SHARE = 0.1
SAMPLE_BYTES = 4096


def utf16_without_bom(raw: bytes) -> str | None:
    """'utf-16-be' or 'utf-16-le' when NULs fill one byte lane of the first bytes, else None."""
    sample = raw[:SAMPLE_BYTES]
    if len(sample) < 2 or len(raw) % 2:
        return None
    even, odd = sample[0::2].count(0) / len(sample[0::2]), sample[1::2].count(0) / len(sample[1::2])
    if even >= UTF16_NUL_SHARE and odd <= UTF16_OTHER_LANE_SHARE:
        return "utf-16-be"
    if odd >= UTF16_NUL_SHARE and even <= UTF16_OTHER_LANE_SHARE:
        return "utf-16-le"
    return None


def decode_text(raw: bytes, source: str, error: type[InputError] = InputError) -> str:
    """`raw` as text: UTF-8 (BOM or none), UTF-16 with a BOM, or UTF-16 without one (recognised);
    else `error` naming `source` and the line of the first bad byte."""
    if raw.startswith((codecs.BOM_UTF16_BE, codecs.BOM_UTF16_LE)):
        encoding = "utf-16"
    else:
        encoding = utf16_without_bom(raw) or "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise error(f"{source}:{line}: not {encoding.upper().replace('-SIG', '')} text "
                    f"(byte 0x{raw[err.start]:02x}); save the file as UTF-8") from err
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise error(f"{source}:{line}: a NUL byte: not a text file (or UTF-16 this reader could not "
                    "recognise); save it as UTF-8")
    return text
