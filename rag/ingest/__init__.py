"""Ingest: files and folders → documents (decode, format readers, cleaning, tables, OCR)."""
