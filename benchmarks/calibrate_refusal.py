"""Calibrate `answer.refuse_threshold` on answerable vs unanswerable questions of an eval set.

For every question the real retrieval runs (the knowledge base must be indexed), the evidence
blocks are packed as the assistant packs them, and the retrieval-evidence scores are computed:
  block  — the best passage's IDF-weighted coverage of the question terms
  sent   — the best single sentence's coverage (what the extractive backend would quote)
  score  — their mean: what the assistant uses (rag.extractive.evidence_score); chosen because it
           had the best balanced accuracy on the dev half
The questions are split in two halves, stratified by answerability (deterministic: sha1 of the
query id); the threshold that maximises balanced accuracy on the dev half is chosen and its
accuracy is reported on the held-out half. Follow-up questions use the set's standalone form
when given, else the heuristic condensation of the question they follow.

    python3 benchmarks/calibrate_refusal.py --evalset evalsets/seeds --kb seeds \
        --out benchmarks/results/refusal_calibration.json

Writes JSON (threshold, dev/test metrics, per-question scores) that benchmarks/answer_latency.py
folds into benchmarks/results/answering.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.answer import answer_language  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.evalsets import dev_split, load_beir  # noqa: E402
from rag.extractive import condense_heuristic, evidence_features  # noqa: E402
from rag.prompts import pack  # noqa: E402


MARGIN = 0.03  # dev balanced-accuracy gain needed to prefer a feature over "block"


def metrics(scores: dict[str, float], labels: dict[str, bool], ids: list[str], thr: float) -> dict[str, float]:
    """Refusal = score < thr. Positive class for recall/precision: unanswerable (should refuse)."""
    tp = sum(1 for i in ids if not labels[i] and scores[i] < thr)  # correctly refused
    fn = sum(1 for i in ids if not labels[i] and scores[i] >= thr)
    fp = sum(1 for i in ids if labels[i] and scores[i] < thr)  # wrongly refused
    tn = sum(1 for i in ids if labels[i] and scores[i] >= thr)
    n = len(ids)
    rec_u = tp / (tp + fn) if tp + fn else 0.0
    rec_a = tn / (tn + fp) if tn + fp else 0.0
    return {
        "n": n,
        "accuracy": (tp + tn) / n if n else 0.0,
        "balanced_accuracy": (rec_u + rec_a) / 2,
        "refuse_recall": rec_u,  # unanswerable questions refused
        "answer_recall": rec_a,  # answerable questions answered
        "refuse_precision": tp / (tp + fp) if tp + fp else 0.0,
    }


def best_threshold(scores: dict[str, float], labels: dict[str, bool], ids: list[str]) -> float:
    vals = sorted({round(scores[i], 4) for i in ids})
    cands = [0.0] + [(a + b) / 2 for a, b in zip(vals, vals[1:])]
    # maximise balanced accuracy; ties → the lower threshold (refuse less)
    return max(cands, key=lambda t: (metrics(scores, labels, ids, t)["balanced_accuracy"], -t))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evalset", default="evalsets/seeds")
    ap.add_argument("--kb", default=None, help="knowledge base (default: the configured one)")
    ap.add_argument("--mode", default=None)
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--out", default="benchmarks/results/refusal_calibration.json")
    args = ap.parse_args()

    from rag.kb import KnowledgeBase

    cfg = load_config()
    kb = KnowledgeBase.open(args.kb or cfg.paths.kb, cfg)
    es = load_beir(args.evalset)
    labels: dict[str, bool] = {}
    feats: dict[str, dict[str, float]] = {"block": {}, "sent": {}, "sent_h": {}, "mean_h": {}, "score": {}}
    langs: dict[str, str] = {}
    t0 = time.time()
    for qid, q in es.queries.items():
        row = es.answers.get(qid, {})
        meta = q.get("metadata", {})
        answerable = row.get("answerable", meta.get("answerable", True))
        labels[qid] = bool(answerable)
        text = q["text"]
        parent = row.get("follow_up_of") or meta.get("follow_up_of")
        standalone = row.get("standalone") or meta.get("standalone")
        if parent and not standalone:
            prev = es.queries.get(parent, {}).get("text", "")
            standalone = condense_heuristic(text, [(prev, "")]) if prev else text
        question = standalone or text
        langs[qid] = answer_language(text)
        hits = kb.search(question, k=args.k or cfg.retrieve.k, mode=args.mode)
        ps = pack(hits, cfg.answer.context_tokens, max_passages=cfg.answer.max_passages, get_chunk=kb.get_chunk)
        for name, v in evidence_features(question, ps).items():
            feats[name][qid] = v
    ids = sorted(labels)
    # the split the eval harness reports too; a follow-up goes to the half of its conversation's first turn
    dev, test = dev_split(ids, labels, {i: es.answers.get(i, {}).get("follow_up_of") for i in ids})
    result: dict = {
        "command": "python3 " + " ".join(sys.argv),
        "evalset": args.evalset,
        "n": len(ids),
        "n_unanswerable": sum(not v for v in labels.values()),
        "dev": len(dev),
        "test": len(test),
        "seconds": round(time.time() - t0, 1),
        "features": {},
    }
    for name, scores in feats.items():
        thr = best_threshold(scores, labels, dev)
        result["features"][name] = {
            "threshold": round(thr, 4),
            "dev": metrics(scores, labels, dev, thr),
            "test": metrics(scores, labels, test, thr),
            "test_zh_only": metrics(scores, labels, [i for i in test if langs[i] != "en"], thr),
            "test_no_refusal": metrics(scores, labels, test, 0.0),
        }
    # the feature the assistant should use, decided on the dev half only (never the test half):
    # the simplest one ("block") unless another beats it on dev by a clear margin — with ~20
    # unanswerable questions per half, smaller differences are noise
    F = result["features"]
    best = max(F, key=lambda f: F[f]["dev"]["balanced_accuracy"])
    sel = best if F[best]["dev"]["balanced_accuracy"] >= F["block"]["dev"]["balanced_accuracy"] + MARGIN else "block"
    result["selected"] = {"refuse_feature": sel, "refuse_threshold": result["features"][sel]["threshold"]}
    result["per_question"] = {
        i: {"answerable": labels[i], "lang": langs[i], **{f: round(feats[f][i], 4) for f in feats}} for i in ids
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    for name, r in result["features"].items():
        d, t = r["dev"], r["test"]
        print(
            f"{name}: threshold {r['threshold']:.4f}  dev bal.acc {d['balanced_accuracy']:.3f}  "
            f"test acc {t['accuracy']:.3f} bal.acc {t['balanced_accuracy']:.3f} "
            f"refuse recall {t['refuse_recall']:.3f} answer recall {t['answer_recall']:.3f}"
        )
    s = result["selected"]
    print(f"selected on dev: answer.refuse_feature = {s['refuse_feature']!r}, answer.refuse_threshold = {s['refuse_threshold']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
