"""Tests for rag.chunking (first increment: sentences and tokens)."""

from rag.chunking import count_tokens, split_sentences


def test_count_tokens_offline():
    assert count_tokens("") == 0
    assert count_tokens("hello world") == 2
    assert count_tokens("中文") >= 1


def test_split_sentences_roundtrip_and_closers():
    text = "他说：“好。”然后走了！\n第二行；第三句？没有结尾"
    parts = split_sentences(text)
    assert "".join(parts) == text
    assert parts == ["他说：“好。”", "然后走了！\n", "第二行；", "第三句？", "没有结尾"]
