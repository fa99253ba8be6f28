"""The help names the week the digest preview shows: the last full week, not "this week"."""

from __future__ import annotations

import json

from incidentbot.digest import default_week
from incidentbot.digest.weeks import last_full_week
from incidentbot.slack.views import help_blocks


def test_help_says_the_week_the_preview_shows(runtime):
    text = json.dumps(help_blocks("/incident"))
    assert "this week" not in text
    assert "last full week" in text
    assert default_week(runtime) == last_full_week(runtime.clock(), runtime.settings.tz)
