"""RFC 6587 framing: octet counting and LF, split anywhere, oversize frames cut and counted."""

from __future__ import annotations

import pytest

from app.receivers.framing import Framer


def feed_in_pieces(framer: Framer, data: bytes, size: int) -> list[bytes]:
    frames = []
    for i in range(0, len(data), size):
        frames += framer.feed(data[i : i + size])
    return frames + framer.finish()


@pytest.mark.parametrize("piece", [1, 3, 7, 64, 10_000])
def test_octet_counted_frames_survive_any_split(piece):
    # Given three octet-counted frames, one containing a newline
    msgs = [b"<13>1 2026-11-23T10:00:00Z h app - - - one", b"<13>two\nlines", b"<14>three"]
    data = b"".join(b"%d %s" % (len(m), m) for m in msgs)
    # When they arrive split into pieces
    framer = Framer()
    # Then each frame comes out whole
    assert feed_in_pieces(framer, data, piece) == msgs
    assert framer.octet_counting is True


@pytest.mark.parametrize("piece", [1, 5, 4096])
def test_lf_framed_lines_survive_any_split_and_crlf_is_trimmed(piece):
    data = b"<13>first\n<13>second\r\n\n<13>last without newline"
    framer = Framer()
    assert feed_in_pieces(framer, data, piece) == [b"<13>first", b"<13>second", b"<13>last without newline"]
    assert framer.octet_counting is False


def test_an_oversize_line_is_cut_counted_and_the_next_line_is_intact():
    framer = Framer(max_frame=100)
    data = b"<13>" + b"x" * 500 + b"\n<13>next\n"
    frames = feed_in_pieces(framer, data, 64)
    assert frames == [(b"<13>" + b"x" * 500)[:100], b"<13>next"]
    assert framer.oversize == 1


def test_an_oversize_line_arriving_whole_is_cut_too():
    framer = Framer(max_frame=100)
    assert framer.feed(b"<13>" + b"z" * 300 + b"\n<13>ok\n") == [(b"<13>" + b"z" * 300)[:100], b"<13>ok"]
    assert framer.oversize == 1


def test_an_oversize_octet_frame_is_cut_and_the_stream_stays_in_step():
    framer = Framer(max_frame=100)
    big = b"<13>" + b"y" * 1000
    data = b"%d %s" % (len(big), big) + b"9 <13>after"
    frames = feed_in_pieces(framer, data, 37)
    assert frames == [big[:100], b"<13>after"]
    assert framer.oversize == 1


def test_garbage_instead_of_a_length_is_a_framing_error():
    framer = Framer()
    with pytest.raises(ValueError):
        framer.feed(b"12abc <13>x")
