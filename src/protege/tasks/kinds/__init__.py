"""Task kinds: each module here owns everything protege does differently for its kind of task.

    kind = kind_of(spec)                          # the module for spec.kind (registry.py)
    messages = kind.prompt(spec, item, shots)     # a chat; shots are earlier user/assistant turns
    prediction = kind.parse(spec, raw_text)       # what gets scored (JSON-serialisable)
    scores = kind.score_items(spec, items, predictions, allow_code_execution=False)

protocol.py lists every name a kind has (TaskKind); registry.py maps `kind:` values to implementations;
chat.py and sections.py are the prompt pieces kinds share.
"""
from protege.tasks.kinds.registry import kind_named, kind_of

__all__ = ["kind_named", "kind_of"]
