"""The ``detclip-bench`` verbs the reference model contributes (``export``).

They are registered in ``pyproject.toml``'s ``detclip_bench.verbs`` entry-point group: the benchmark core
discovers them there and never imports this package.
"""
