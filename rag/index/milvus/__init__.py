"""The Milvus index backend (`index.backend = "milvus"`, docs/milvus.md)."""
