"""`protege serve`: an OpenAI-compatible HTTP server over a local model (see serve/server.py)."""
from protege.serve.server import ModelServer, load_model, serve

__all__ = ["ModelServer", "load_model", "serve"]
