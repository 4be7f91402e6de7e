"""Index: one knowledge base on disk (local FAISS + BM25, or Milvus), versioned and atomic."""
