"""The answer stage: condense → translate → retrieve → evidence → generate → refuse."""
