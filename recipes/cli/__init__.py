"""The ``detclip-bench`` verbs that run the paper's recipes (``train``, ``finetune``, ``reproduce``).

They are registered in ``pyproject.toml``'s ``detclip_bench.verbs`` entry-point group: the benchmark
core discovers them there and never imports this package.
"""
