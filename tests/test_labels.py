"""The label file: what is tolerated, what is refused and how the refusal reads."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facecls.data.labels import decode_labels, format_labels, parse_labels, read_labels
from facecls.errors import FaceclsError


@pytest.mark.parametrize("raw", [
    b"0\n1\n1\n",            # the usual form
    b"0\r\n1\r\n1\r\n",      # written on Windows
    b"0\n1\n1",              # no final newline
    b"0  \n1\t\n1 \r\n",     # trailing spaces and tabs
    b"\xef\xbb\xbf0\n1\n1\n",  # UTF-8 byte order mark (Notepad)
    b"0\r1\r1\r",            # old Mac line ends
    b"0\n1\n1\n\n\n",        # blank lines after the last label
])
def test_tolerated_variants_read_as_the_same_labels(tmp_path, raw):
    path = tmp_path / "label_train.txt"
    path.write_bytes(raw)
    assert read_labels(path).tolist() == [0, 1, 1]


@pytest.mark.parametrize(("text", "line", "shown"), [
    ("0\n2\n1\n", 2, "'2'"),
    ("0\n1\nyes\n", 3, "'yes'"),
    ("-1\n", 1, "'-1'"),
    ("1.0\n", 1, "'1.0'"),
    ("0 1\n", 1, "'0 1'"),
    ("0\n\n1\n", 2, "''"),              # a blank line inside would shift every label after it
    ("0\n1\x0c\n", 2, "'1\\x0c'"),      # a form feed is not a line end
    ("1\n" + "7" * 40 + "\n", 2, "'" + "7" * 20 + "...'"),
])
def test_a_bad_line_is_refused_by_number(text, line, shown):
    with pytest.raises(FaceclsError) as error:
        parse_labels(text, "labels.txt")
    assert str(error.value) == f"labels.txt: line {line} is {shown}, expected 0 or 1"


@pytest.mark.parametrize("raw", [b"", b"\n\n", b"  \r\n", b"\xef\xbb\xbf"])
def test_empty_label_file_is_refused(tmp_path, raw):
    path = tmp_path / "label_train.txt"
    path.write_bytes(raw)
    with pytest.raises(FaceclsError) as error:
        read_labels(path)
    assert str(error.value) == f"{path}: empty label file"


def test_a_binary_file_is_refused(tmp_path):
    path = tmp_path / "label_train.txt"
    path.write_bytes(b"0\n1\n\xff\xfe\n")
    with pytest.raises(FaceclsError) as error:
        read_labels(path)
    assert str(error.value) == f"{path}: not a UTF-8 text file (byte 4)"


def test_missing_label_file_and_folder_are_named(tmp_path):
    with pytest.raises(FaceclsError, match=f"^{tmp_path / 'absent.txt'}: label file not found$"):
        read_labels(tmp_path / "absent.txt")
    with pytest.raises(FaceclsError, match=f"^{tmp_path}: is a folder, expected the label file$"):
        read_labels(tmp_path)


def test_written_labels_read_back(tmp_path):
    path = tmp_path / "label_val.txt"
    path.write_text(format_labels([1, 0, 0, 1]))
    assert path.read_bytes() == b"1\n0\n0\n1\n"
    assert read_labels(path).tolist() == [1, 0, 0, 1]


line_ends = st.sampled_from(["\n", "\r\n", "\r"])
padding = st.text(alphabet=" \t", max_size=3)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), padding, line_ends), min_size=1, max_size=40),
       st.booleans(), st.booleans())
def test_any_rendering_of_labels_parses_back_exactly(lines, final_newline, bom):
    text = "".join(f"{value}{pad}{end}" for value, pad, end in lines)
    if not final_newline:
        text = text.rstrip("\r\n")
    raw = ("\ufeff" if bom else "").encode() + text.encode()
    assert decode_labels(raw, "x").tolist() == [value for value, _, _ in lines]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=1, max_size=20), st.data())
def test_anything_else_on_a_line_is_refused_naming_that_line(labels, data):
    bad_at = data.draw(st.integers(0, len(labels) - 1))
    # Any text without a line end that is not a 0 or 1 between spaces and tabs.
    junk = data.draw(st.text(st.characters(blacklist_characters="\r\n"), min_size=1, max_size=8)
                     .filter(lambda s: s.strip(" \t") not in ("0", "1", "")))
    lines = [str(v) for v in labels]
    lines[bad_at] = junk
    with pytest.raises(FaceclsError) as error:
        parse_labels("\n".join(lines) + "\n", "labels.txt")
    message = str(error.value)
    assert message.startswith(f"labels.txt: line {bad_at + 1} is ")
    assert "\n" not in message
