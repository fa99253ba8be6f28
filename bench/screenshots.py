"""Write docs/screenshots/console.png and hypothesis.png with headless Chromium (see tests/browser_setup.sh).

Runs the browser test that drives the real service and saves the screenshots for the README:
    .venv/bin/python bench/screenshots.py
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    env = dict(os.environ, INCIDENTBOT_SCREENSHOTS="1")
    sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", "tests/test_console_browser.py", "-k", "vote"],
                             cwd=ROOT, env=env))
