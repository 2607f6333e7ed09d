"""The column prefilter must never clear a value that ``looks_identifying`` would flag."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.scan.patterns import looks_identifying, maybe_identifying

POSITIVES = [
    "arn:aws:iam::111122223333:user/alice", "AKIAABCDEFGHIJKLMNOP", "ASIA1234567890ABCDEF", "a.b@example.org",
    "203.0.113.9", "kv.198.51.100.7.read", "2001:db8::1", "fe80:0:0:0:0:0:0:1", "111122223333",
    "h210987654321.amazonaws.com", "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662",
    "x 10.0.0.1 y", "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/x",
]
NEGATIVES = ["abcde202-ba1a-467c-b4ba-f729d45ae521", "Decrypt", "eu-central-1", "aws-sdk-java/2.20.0",
             "kms.amazonaws.com", "prn.k1.gi5piueyqq7tnbxs7tsjrnu7u4", "", "1.2.3"]

# Characters the patterns are built from, plus a non-ASCII digit and anything else.
_ALPHABET = st.sampled_from([*"0123456789abcdefABCDEFKIPSNORGVarnws:.@-_/ ", "\u0661", "\u07c0", "\u00e9"])
_VALUES = st.one_of(st.text(_ALPHABET, max_size=48), st.text(max_size=24),
                    st.builds(lambda a, b, c: a + b + c, st.text(_ALPHABET, max_size=8), st.sampled_from(POSITIVES),
                              st.text(_ALPHABET, max_size=8)))


def _flags(values: list[str]) -> list[bool]:
    return maybe_identifying(pa.array(values, pa.string())).to_pylist()  # type: ignore[no-any-return]


def test_known_identifiers_pass_the_prefilter_and_plain_values_do_not() -> None:
    assert all(looks_identifying(v) for v in POSITIVES)
    assert _flags(POSITIVES) == [True] * len(POSITIVES)
    assert _flags(NEGATIVES) == [False] * len(NEGATIVES)
    assert maybe_identifying(pa.array([None, "1.2.3.4"], pa.string())).to_pylist() == [False, True]


@settings(max_examples=3000, deadline=None)
@given(st.lists(_VALUES, min_size=1, max_size=20))
def test_prefilter_is_a_superset_of_the_patterns(values: list[str]) -> None:
    for value, flagged in zip(values, _flags(values), strict=True):
        if looks_identifying(value):
            assert flagged, "the prefilter cleared a value the patterns flag"
