"""Curation filters, one concern per module; synth/curate.py runs them in order and records what each dropped.

Each filter maps the records it is given (in id order) to {position: (reason, detail)} for the ones it drops.
  schema.py      per-kind validity and lengths           dedup.py, minhash.py   exact and near duplicates
  decontam.py    copies and paraphrases of test items    embed.py               MiniLM sentence encoder
  execution.py   code passes its tests in the sandbox    simplicity.py, codemetrics.py   simple, clean code
"""
