"""Random reply streams and parser options (hypothesis strategies) for the
differential tests: the compiled parser against the reference
(``test_differential.py``), the reference's accelerator against its line
checker (``test_reference.py``)."""

from __future__ import annotations

from hypothesis import strategies as st

CODES = [b"220", b"250", b"251", b"354", b"421", b"450", b"500", b"550", b"199", b"599",
         b"600", b"099", b"260", b"2x0", b"25"]

text_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))

valid_line = st.builds(
    lambda code, sep, text, end: code + sep + text + end,
    st.sampled_from(CODES[:10]),
    st.sampled_from([b"-", b" ", b""]),
    text_bytes,
    st.sampled_from([b"\r\n", b"\n"]),
)
reply = st.builds(
    lambda code, texts, end: b"".join(code + b"-" + t + end for t in texts[:-1])
    + code + b" " + texts[-1] + end,
    st.sampled_from(CODES[:10]),
    st.lists(text_bytes, min_size=1, max_size=6),
    st.sampled_from([b"\r\n", b"\n"]),
)
# Three bytes where a code goes: any byte values, not only digits (the
# compiled parser checks them with word arithmetic).
any_code = st.binary(min_size=3, max_size=3)
junk_line = st.builds(
    lambda code, sep, text, end: code + sep + text + end,
    st.one_of(st.sampled_from(CODES), any_code),
    st.sampled_from([b"-", b" ", b"", b"\t", b"x", b"\r"]),
    text_bytes,
    st.sampled_from([b"\r\n", b"\n", b"\r", b""]),
)
piece = st.one_of(reply, reply, valid_line, junk_line, st.binary(max_size=12))
stream = st.one_of(
    st.lists(st.one_of(reply, valid_line), max_size=25).map(b"".join),  # mostly well formed
    st.lists(piece, max_size=25).map(b"".join),  # anything goes
)
options = st.fixed_dictionaries(
    {},
    optional={
        "strict": st.booleans(),
        "max_line_length": st.integers(4, 60),
        "max_reply_lines": st.integers(1, 8),
    },
)

#: Where a stream is cut (taken modulo its length plus one).
cuts = st.lists(st.integers(0, 10_000), max_size=8)


def cut(data: bytes, at: list[int]) -> list[bytes]:
    """``data`` cut at the offsets ``at`` (modulo its length plus one)."""
    bounds = [0, *sorted(c % (len(data) + 1) for c in at), len(data)]
    return [data[start:end] for start, end in zip(bounds, bounds[1:])]


# Lines at the edges of the rules, after a few good replies (for the
# accelerator, which only ever takes a run of replies from the start).
EDGE_CODES = [b"099", b"100", b"199", b"200", b"259", b"260", b"299", b"300", b"459", b"460",
              b"500", b"559", b"560", b"599", b"600", b"999", b"25", b"2x0", b"\xb2\xb5\xb0",
              b"2 0", b"250"]
edge_line = st.builds(
    lambda code, sep, text, end: code + sep + text + end,
    st.sampled_from(EDGE_CODES),
    st.sampled_from([b"-", b" ", b"", b"\t", b"x"]),
    st.one_of(st.just(b""), text_bytes),
    st.sampled_from([b"\r\n", b"\n", b"\r", b"", b"\r\r\n"]),
)
edge_stream = st.builds(
    lambda head, edges, tail: b"".join(head) + b"".join(edges) + tail,
    st.lists(reply, max_size=3),
    st.lists(edge_line, min_size=1, max_size=4),
    stream,
)
