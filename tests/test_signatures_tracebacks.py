"""Python tracebacks: the exception is the first unindented line after the frames, whatever its class
is called. A type without an ``Error`` suffix (``zlib.error``, ``socket.timeout``,
``KeyboardInterrupt``) once fell through to the template engine, which titled the signature
"Traceback (most recent call last):" — the one line every traceback shares."""

from __future__ import annotations

import pytest

from incidentbot import signatures

FRAMES = (
    "Traceback (most recent call last):\n"
    '  File "/opt/conda/lib/python3.11/site-packages/torch/utils/data/_utils/worker.py", line 308, in _worker_loop\n'
    "    data = fetcher.fetch(index)\n"
    '  File "/workspace/run7/data/indexed_dataset.py", line 233, in __getitem__\n'
    "    return self._decompress(buf)\n"
)

# (last line after the frames, the exception type the signature is titled with)
FIRES = [
    ("zlib.error: Error -3 while decompressing data: invalid stored block lengths", "zlib.error"),
    ("socket.timeout: timed out", "socket.timeout"),
    ("KeyboardInterrupt", "KeyboardInterrupt"),
    ("StopIteration", "StopIteration"),
    ("binascii.Error: Incorrect padding", "binascii.Error"),
    ("ValueError: shard 17 is truncated", "ValueError"),
    ("[rank3]: zlib.error: Error -3 while decompressing data", "zlib.error"),
]


@pytest.mark.parametrize(("last", "exc"), FIRES)
def test_the_exception_after_the_frames_titles_the_signature(last, exc):
    exp = signatures.explain(FRAMES + last)
    assert exp.parser == "traceback"
    assert exp.fingerprint.title == f"{exc} in indexed_dataset.py:__getitem__"


# Known-wrong: text that must not be read as an exception line.
KNOWN_WRONG = [
    # a source line of a frame is indented: it is code, not the exception
    FRAMES + "    x = y\n",
    # no frames at all: a bare "word: text" line after the header is no exception
    "Traceback (most recent call last):\nnot really: a traceback",
]


@pytest.mark.parametrize("text", KNOWN_WRONG)
def test_what_is_not_an_exception_line_is_not_taken_for_one(text):
    assert signatures.explain(text).parser != "traceback"


def test_one_failure_mode_whatever_the_shard_and_offset():
    a = FRAMES + "zlib.error: Error -3 while decompressing data (shard /data/shard-52076.bin, offset 38440960)"
    b = (
        FRAMES.replace("line 233", "line 240")
        + "zlib.error: Error -3 while decompressing data (shard /data/shard-1.bin, offset 7)"
    )
    assert signatures.fingerprint(a).key == signatures.fingerprint(b).key
    other = FRAMES + "socket.timeout: timed out"
    assert signatures.fingerprint(a).key != signatures.fingerprint(other).key
