"""Research code that measures protege, kept out of the product: nothing outside `protege.lab` imports it.

- `protege.lab.throughput`: speed and memory benches (`make bench`; generation, training, sandbox, cooperative
  decoding cost, the Linear-layer ceiling, the llama.cpp comparison).
- `protege.lab.experiments`: the experiments behind docs/experiments/*.md (`python -m protege.lab.experiments.X`).

The model benchmark (students x teachers x tasks, ranks and confidence intervals) is a product feature and lives
in `protege.benchmark` (`protege bench CONFIG`).
"""
