"""The ``detclip-bench`` command line: one module per verb (see :mod:`detclip_bench.cli.main`)."""
