"""Calibrate `answer.refuse_threshold` on answerable vs unanswerable questions of an eval set.

For every question the assistant's own retrieval runs (`Assistant.retrieve`: packing and
enumeration extension as users get them; the knowledge base must be indexed) and its own
pre-generation check (`rag.answer.refusal.pre_check`), whose retrieval-evidence features are:
  block  — the best passage's IDF-weighted coverage of the question terms
  sent   — the best single sentence's coverage (what the extractive backend would quote)
  sent_h — the same with the passage heading counted as context; mean_h, score — means
A question whose year/number/quoted term is in no passage is refused whatever the threshold
(scored -1). The questions are split in two halves by rag.evaluate.evalsets.dev_split (stratified by
answerability, a conversation in one half); on the dev half, the threshold that maximises
balanced accuracy while refusing at most MAX_FALSE_REFUSALS of the answerable questions is
chosen (the model and the claim check refuse more after generation, so the gate must not use
the whole false-refusal budget), and it is reported on the held-out half beside "never
refuse". Follow-up questions use the set's standalone form when given, else the heuristic
condensation of the question they follow.

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

from rag.answer.assistant import answer_language  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.evaluate.evalsets import dev_split, load_beir  # noqa: E402
from rag.answer.followup import condense_heuristic  # noqa: E402


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


MAX_FALSE_REFUSALS = 0.05  # the bar for the whole assistant: the retrieval gate may use at most that


def best_threshold(scores: dict[str, float], labels: dict[str, bool], ids: list[str]) -> float:
    """Maximise balanced accuracy among thresholds whose false-refusal rate on `ids` stays
    within MAX_FALSE_REFUSALS (the model and the claim check refuse more after generation, so
    the retrieval gate must not spend the false-refusal budget alone); ties → the lower
    threshold (refuse less)."""
    vals = sorted({round(scores[i], 4) for i in ids})
    cands = [0.0] + [(a + b) / 2 for a, b in zip(vals, vals[1:])]

    def fr(t: float) -> float:
        return 1.0 - metrics(scores, labels, ids, t)["answer_recall"]

    ok = [t for t in cands if fr(t) <= MAX_FALSE_REFUSALS] or [0.0]
    return max(ok, key=lambda t: (metrics(scores, labels, ids, t)["balanced_accuracy"], -t))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evalset", default="evalsets/seeds")
    ap.add_argument("--kb", default=None, help="knowledge base (default: the configured one)")
    ap.add_argument("--mode", default=None)
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--out", default="benchmarks/results/refusal_calibration.json")
    args = ap.parse_args()

    from rag.answer.assistant import Assistant
    from rag.answer.refusal import pre_check

    cfg = load_config()
    # the production retrieval and pre-generation check (packing, enumeration extension, the
    # question-constraint rule), never a copy: what is calibrated is what users run
    assistant = Assistant.open(args.kb or cfg.paths.kb, cfg)
    es = load_beir(args.evalset)
    labels: dict[str, bool] = {}
    feats: dict[str, dict[str, float]] = {"block": {}, "sent": {}, "sent_h": {}, "mean_h": {}, "score": {}}
    langs: dict[str, str] = {}
    forced: dict[str, list[str]] = {}  # questions refused by a missing constraint, whatever the threshold
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
            standalone = condense_heuristic(text, [(prev, "")]).text if prev else text
        question = standalone or text
        langs[qid] = answer_language(text)
        ps = assistant.retrieve(question, k=args.k, mode=args.mode, backend=cfg.llm.backend)
        pc = pre_check(question, ps, threshold=0.0, feature="block", lang=langs[qid])
        forced[qid] = pc.features.get("missing", [])
        for name in feats:
            # a missing constraint refuses whatever the threshold: score it below every threshold
            feats[name][qid] = -1.0 if forced[qid] else pc.features.get(f"f_{name}", 0.0)
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
        "max_false_refusals": MAX_FALSE_REFUSALS,
        "refused_by_missing_constraint": {
            "answerable": sum(1 for i in ids if forced[i] and labels[i]),
            "unanswerable": sum(1 for i in ids if forced[i] and not labels[i]),
        },
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
