"""rag: question answering with checked citations over Chinese documents.

One folder per pipeline stage, in the order a question meets them:

    ingest/   files → documents (decode, format readers, cleaning, tables, ingest/ocr for scans)
    chunk/    documents → section-aware chunks
    (embeddings/ at the top level: the encoders)
    index/    chunks → one versioned knowledge base (local FAISS + BM25, or index/milvus)
    retrieve/ question → per-retriever candidates → pure fusion
    answer/   condense, translate, evidence, prompts, generation, refusal, extractive backend
    cite/     markers → passages, claim checks, statement review, report export
    llm/      chat-model backends, their installation and kernels
    apps/     the CLI (apps/commands), the REST and OpenAI-compatible APIs, shared services
    evaluate/ the eval harness, metrics and baselines

Shared across stages: rag.types (core types), rag.config, rag.errors, rag.limits and rag.text
(the one marker grammar, quote matcher, sentence splitter and normalisation). The web chat is ui/.
"""

__version__ = "0.1.0"
