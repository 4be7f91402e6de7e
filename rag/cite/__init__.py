"""Citations: markers → passages, claim checks, statement review, report export."""
