"""Retrieval: per-retriever candidates and their pure fusion."""
