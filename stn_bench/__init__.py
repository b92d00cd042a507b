"""The ``stn-bench`` command: run, report, options, list (``stn_bench.cli``).

The front door sits above the rest (scripts → stn_bench → experiments → stn): nothing in
``experiments/`` or ``stn/`` imports it.
"""
