"""Chunking: clean text → sections → sentence-packed chunks."""
