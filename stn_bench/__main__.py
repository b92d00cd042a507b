"""``python -m stn_bench``: the ``stn-bench`` command (``stn_bench.cli``)."""

import sys

from stn_bench.cli import main

sys.exit(main())
