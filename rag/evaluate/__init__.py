"""Evaluation: metrics (rag.evaluate.metrics, pure functions), the harness behind `rag eval`
(rag.evaluate.harness: the resumable loop and its public entry points, built from data, cache,
qrels, runconfig, question, judge, aggregate, splits, baselines and naive) and its reports
(rag.evaluate.summary for the tables, report for report.md, plots). See docs/INTERFACES.md."""
