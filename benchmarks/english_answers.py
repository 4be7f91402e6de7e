"""English answers over Chinese documents: how many show Chinese the model copied into them,
as the model's answers were shown before rag.text.english and as they are shown now.

    python3 benchmarks/english_answers.py runs/seeds-llm4 [--out benchmarks/results/english_answers.md]

Reads a run folder of `rag eval` (results.jsonl), takes every English question's stored answer
per configuration, and puts each answer through the production display step
(rag.answer.edges.to_answer_script, which calls rag.text.english.englishify) — the same step
rag.cite.review applies to each statement. Counted: answers with a Chinese character outside a gloss
(parentheses or quotation marks, which the display step keeps on purpose), before and after.
No model runs: the answers are the ones the run stored, so the two columns are the same answers.
The extractive backend quotes the Chinese sentence for an English question by design (a quote
is the answer), so its answers are Chinese in both columns.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import load_average  # noqa: E402 - benchmarks/ is on sys.path (the script's folder)
from rag.answer.edges import to_answer_script  # noqa: E402
from rag.text.english import _GLOSS  # noqa: E402
from rag.text.markers import strip_markers  # noqa: E402

_CJK = re.compile(r"[\u3400-\u9fff]")


def bleeds(text: str) -> bool:
    """Chinese outside a gloss.

    >>> bleeds("It was 600元"), bleeds('the "一站三中心" model'), bleeds("Yue Dan (岳丹)")
    (True, False, False)
    """
    return bool(_CJK.search(_GLOSS.sub("", text)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/english_answers.md"))
    args = ap.parse_args()
    rows = [json.loads(line) for line in (args.run / "results.jsonl").open(encoding="utf-8")]
    by_config: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("lang") == "en" and r.get("answer") and not r.get("refused"):
            by_config.setdefault(r["config"], []).append(r)
    lines = [
        "# English answers: Chinese copied into them, before and after rag.text.english",
        "",
        f"- command: `python3 benchmarks/english_answers.py {args.run} --out {args.out}`",
        f"- load average: {load_average()} (no model runs; stored answers)",
        "",
        "| configuration | English answers (not refused) | with Chinese outside a gloss, as stored | after the display step |",
        "| --- | --- | --- | --- |",
    ]
    examples: list[str] = []
    for config, rs in sorted(by_config.items()):
        before = [r for r in rs if bleeds(strip_markers(r["answer"]))]
        after = [r for r in rs if bleeds(to_answer_script(strip_markers(r["answer"]), "en"))]
        lines.append(f"| {config} | {len(rs)} | {len(before)} | {len(after)} |")
        for r in before[:6]:
            examples.append(f"- `{config}` {r['qid']}: {strip_markers(r['answer'])[:140]!r} → "
                            f"{to_answer_script(strip_markers(r['answer']), 'en')[:140]!r}")
    lines += ["", "## Examples", "", *examples, ""]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
