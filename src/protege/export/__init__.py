"""What a user takes home from a run: `protege export CONFIG --format hf|gguf|ollama --out DIR`.

  hf.py           the student with its adapter merged, as a plain Hugging Face folder, and a model card
  card.py         the card: task, teacher, data, method, the evaluation table with intervals, cost, provenance
  llama_source.py llama.cpp's converter, from the llama-cpp-python sdist on PyPI (fetched once, cached)
  gguf.py         the merged folder as a GGUF file (llama.cpp's convert_hf_to_gguf.py)
  ollama.py       an Ollama Modelfile beside the GGUF file
"""
