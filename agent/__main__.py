"""`python -m agent` runs the `edge-agent` command."""

import sys

from agent.cli.main import main

sys.exit(main())
