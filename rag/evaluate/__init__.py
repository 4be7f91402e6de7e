"""Evaluation: metrics (rag.evaluate.metrics, pure functions), the harness behind `rag eval`
(rag.evaluate.harness) and its reports (rag.evaluate.report). See docs/INTERFACES.md."""
