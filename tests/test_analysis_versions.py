"""One version order for the analysis and the "fixed in" check (analysis/versions.py)."""

import pytest

from incidentbot.analysis.versions import compare_versions, version_key
from incidentbot.services import versions as service_versions

ORDERED = [  # (lower, higher)
    ("2.4.0rc1", "2.4.0"),
    ("2.4.0a1", "2.4.0b1"),
    ("2.4.0b1", "2.4.0rc1"),
    ("2.4.0.dev1", "2.4.0a1"),
    ("2.3.0", "2.3.0+cu121"),  # a local build tag sorts after its release
    ("v1.9", "v1.10"),
    ("2.3.1", "2.10.0"),
    ("12.4", "12.6"),
    ("535.161.08", "550.54.15"),
]
EQUAL = [("2.4", "2.4.0"), ("v2.4.0", "2.4.0")]
# known-wrong answers an earlier order gave: rc after the release, 2.4 below 2.4.0
KNOWN_WRONG = [("2.4.0", "2.4.0rc1"), ("2.4", "2.4.0")]


@pytest.mark.parametrize("lo,hi", ORDERED)
def test_order(lo, hi):
    assert version_key(lo) < version_key(hi)
    assert compare_versions(lo, hi) == -1 and compare_versions(hi, lo) == 1


@pytest.mark.parametrize("a,b", EQUAL)
def test_equal(a, b):
    assert compare_versions(a, b) == 0


@pytest.mark.parametrize("lo,hi", KNOWN_WRONG)
def test_known_wrong_orders_are_not_given(lo, hi):
    assert not version_key(lo) < version_key(hi)


def test_shas_do_not_order_and_the_service_uses_the_same_order():
    assert compare_versions("deadbeef", "2.4.0") is None
    assert service_versions.compare_versions is compare_versions
    assert service_versions.version_at_least("2.4.0", "2.4.0rc1") and not service_versions.version_at_least(
        "2.4.0rc1", "2.4.0"
    )
