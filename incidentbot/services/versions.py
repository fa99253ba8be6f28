"""Version order for "this job runs the fixed version or later": the analysis' one order."""

from incidentbot.analysis.versions import compare_versions, version_at_least

__all__ = ["compare_versions", "version_at_least"]
