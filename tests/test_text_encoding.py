"""UTF-16 without a BOM is recognised, not read as text with a NUL before each letter (issue 34, point 12)."""

from __future__ import annotations

import pytest

from emodetect.errors import InputError
from emodetect.text.encoding import decode_text

TEXT = "1\n00:00:01,000 --> 00:00:02,500\nI am so happy — really!\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-16-le"])
def test_utf8_and_utf16_with_or_without_a_bom_decode_to_the_same_text(encoding):
    assert decode_text(TEXT.encode(encoding), "x.txt") == TEXT


def test_stray_nul_bytes_are_an_error_naming_the_file_and_line():
    with pytest.raises(InputError, match=r"x.txt:2: a NUL byte"):
        decode_text(b"fine\nbro\x00ken\n", "x.txt")


def test_bytes_that_are_not_utf8_name_the_line():
    with pytest.raises(InputError, match=r"x.csv:3: not UTF-8 text \(byte 0xff\)"):
        decode_text(b"a\nb\n\xff\n", "x.csv")


def test_subtitles_saved_as_utf16_be_without_a_bom_are_read(tmp_path):
    from emodetect.multimodal import read_subtitles

    path = tmp_path / "talk.srt"
    path.write_bytes(TEXT.encode("utf-16-be"))
    cues = read_subtitles(path)
    assert [c.text for c in cues] == ["I am so happy — really!"] and cues[0].end_s == 2.5


@pytest.mark.parametrize("encoding", ["utf-16-be", "utf-16-le"])
def test_utf16_without_a_bom_holding_characters_with_a_zero_byte_is_recognised(encoding):
    text = "id,text\n1,so glad 😀 一 Ā today\n"  # 😀's low surrogate DE00, U+4E00 and U+0100 hold a 0 byte
    assert decode_text(text.encode(encoding), "x.csv") == text
