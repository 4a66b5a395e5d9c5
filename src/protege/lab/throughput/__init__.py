"""Speed and memory benches: `make bench` runs them all (`python -m protege.lab.throughput.run_benchmarks`)."""
