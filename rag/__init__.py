"""rag: question answering with checked citations over Chinese documents.

Pipeline stages, one module each: ingest → clean → chunking → (embeddings/) → index → retrieve
(fusion) → answer (prompts, llm, cite) → report; the web chat lives in ui/, evaluation in evaluate.
Core types are in rag.types; configuration in rag.config.
"""

__version__ = "0.1.0"
