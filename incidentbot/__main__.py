import sys

from incidentbot.cli import main

sys.exit(main())
