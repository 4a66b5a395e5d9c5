"""Experiments that produce the tables in docs/experiments/ (each module's docstring gives its exact command)."""
