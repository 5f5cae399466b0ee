"""`python -m monitor.cli`: the driftwatch command, as the console script runs it."""

from monitor.cli.commands import main

raise SystemExit(main())
