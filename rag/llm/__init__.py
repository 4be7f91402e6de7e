"""LLM backends (local llama.cpp, OpenAI-compatible, fake), their installation and kernels."""
