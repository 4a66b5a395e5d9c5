"""How answers are scored, below every stage: metrics (`protege.scoring.metrics`) and the sandbox that runs
untrusted code (`protege.scoring.sandbox`). Task kinds, curation, training rewards and the eval stage all use
them; nothing here imports a stage.
"""
