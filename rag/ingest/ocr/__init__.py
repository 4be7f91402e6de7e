"""OCR for scanned documents: image-only PDF pages and picture files → text whose every character
knows its page and box.

Modules: `document` (entry points for rag.ingest.formats / rag.ingest.load: `read_scanned_pdf`, `read_image`,
`ocr_progress`; the text and its page/box table), `pages` (rendering PDF pages with pypdfium2,
image frames with Pillow; the same images for the web chat's crop), `engine` (RapidOCR, loaded
once per process; orientation), `tesseract` (the second reader for traditional script), `layout`
(reading order, columns, paragraphs, running headers/footers), `cache` (results by page image),
`locate` (spans → page and boxes for chunks and citations).

Nothing is imported here: `rag.ingest.load` needs only the suffix list of `rag.ingest.ocr.pages`.
"""
