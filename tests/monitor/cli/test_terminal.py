from __future__ import annotations

import io
import logging

from monitor.cli.terminal import OneLineFormatter, printable


def test_escape_sequences_and_line_breaks_are_shown_not_obeyed() -> None:
    hostile = "bot\x1b]0;pwned\x07\x1b[2J\rOK\nFAKE ROW\x9b31m"
    shown = printable(hostile)
    assert shown == "bot\\x1b]0;pwned\\x07\\x1b[2J\\rOK\\nFAKE ROW\\x9b31m"
    assert all(ch.isprintable() for ch in shown)


def test_bidi_overrides_cannot_reorder_what_the_operator_reads() -> None:
    assert printable("invoice\u202egnp.exe") == "invoice\\u202egnp.exe"


def test_ordinary_text_in_any_script_is_unchanged() -> None:
    text = "Où est ma carte? 我的卡在哪里 — ¿dónde? 🙂"
    assert printable(text) == text


def test_a_newline_in_a_logged_service_name_cannot_forge_a_second_record() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("test.terminal")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("segment %s overflowed", "svc\nCRITICAL admin logged in")
    finally:
        log.removeHandler(handler)
    assert out.getvalue() == "WARNING segment svc\\nCRITICAL admin logged in overflowed\n"
