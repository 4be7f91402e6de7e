"""The plots of an evaluation report (matplotlib, Agg backend): Recall@k per retrieval mode, a
latency histogram, per-document bars; PNG files beside report.md (rag.evaluate.report).

Deliberate compromise: one function draws all three figures in turn (76 lines of plain
matplotlib calls); splitting it would only pass the same axes around.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence


def write_plots(out: Path, metrics: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The PNGs report.md links (recall@k per mode, latency histogram, per-document bars),
    written into `out`; returns {name: file name} for those that had data."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and CI
    import matplotlib.pyplot as plt

    files: dict[str, str] = {}
    configs = metrics["configs"]
    first = next(iter(configs.values()))
    sweep = next((m["retrieval_sweep"] for m in configs.values() if m.get("retrieval_sweep")), {})
    if sweep:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
        for ax, level in zip(axes, ("chunk", "doc")):
            for mode, m in sweep.items():
                ks = sorted(int(k.split("@")[1]) for k in m[level] if k.startswith("recall@") and m[level][k] is not None)
                if ks:
                    ax.plot(ks, [m[level][f"recall@{k}"] for k in ks], marker="o", label=mode)
            ax.set_xscale("log")
            ax.set_xticks([1, 3, 5, 10, 20])
            ax.set_xticklabels(["1", "3", "5", "10", "20"])
            ax.set_xlabel("k")
            ax.set_title(f"{level}-level Recall@k")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("recall")
        axes[0].set_ylim(0, 1.02)
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(out / "recall_at_k.png", dpi=110)
        plt.close(fig)
        files["recall"] = "recall_at_k.png"

    fig, ax = plt.subplots(figsize=(8, 3.5))
    plotted = False
    for name in configs:
        key = "retrieve" if configs[name]["config"].get("retrieval_only") else "total"
        vals = [(r.get("timings") or {}).get(key) for r in rows if r["config"] == name]
        vals = [v for v in vals if v is not None]
        if vals:
            ax.hist(vals, bins=30, alpha=0.55, label=f"{name} ({key})")
            plotted = True
    if plotted:
        ax.set_xlabel("seconds per question")
        ax.set_ylabel("questions")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        files["latency"] = "latency.png"
    plt.close(fig)

    per_doc = first.get("per_document") or {}
    docs = [d for d in per_doc if not d.startswith("(")]
    if 1 < len(docs) <= 40:
        # one config: its retrieval and answer figures side by side; several: one figure per config
        names = list(configs)
        if len(names) == 1:
            ro = configs[names[0]]["config"].get("retrieval_only")
            series = [(names[0], k) for k in (["chunk_recall@5", "doc_recall@5"] if ro else ["chunk_recall@5", "contains", "f1"])]
        else:
            series = [(n, "chunk_recall@5" if configs[n]["config"].get("retrieval_only") else "contains") for n in names]
        fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(docs) + 2), 3.8))
        width = 0.8 / len(series)
        for i, (name, key) in enumerate(series):
            pd = configs[name].get("per_document") or {}
            ys = [pd.get(d, {}).get(key) or 0.0 for d in docs]
            label = key if len(names) == 1 else f"{name} {key}"
            ax.bar([j + i * width for j in range(len(docs))], ys, width=width, label=label)
        ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(docs))])
        ax.set_xticklabels([d[:18] for d in docs], rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8)
        ax.set_title("per document")
        fig.tight_layout()
        fig.savefig(out / "per_document.png", dpi=110)
        plt.close(fig)
        files["per_document"] = "per_document.png"
    return files
