"""What `rac eval` prints and draws from its JSON report: a text summary and the
precision-coverage curve as an image."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_curve(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    curve = report["curve"]
    if curve:
        ax.plot([c for c, _ in curve], [p for _, p in curve], drawstyle="steps-post")
    for target in (0.90, 0.95):
        ax.axhline(target, color="grey", linewidth=0.6, linestyle="--")
    m = report["metrics"]
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("coverage (share of items labelled at or above the cutoff)")
    ax.set_ylabel("precision")
    ax.set_title(f"{report['method']} on {report['data']['file']} (n={m['n']}, "
                 f"accuracy {m['accuracy']:.3f})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summary(report: dict[str, Any]) -> str:
    m = report["metrics"]

    def f(x: Any, fmt: str = ".3f") -> str:
        return "n/a" if x is None else format(x, fmt)

    lines = [f"{report['method']} on {report['data']['file']}: {m['n']} items "
             f"({report['schema']['labels']} labels)"]
    if "all_in_prompt" in report:
        fit = report["all_in_prompt"]
        if fit["truncated"]:
            lines.append(f"  WARNING: only {fit['labels_in_prompt']} of {fit['labels_total']} "
                         "labels fit in the context window; the others can never be predicted")
        else:
            lines.append(f"  all {fit['labels_total']} labels fit in the prompt "
                         f"({fit['prefix_tokens']} tokens)")
    lines.append(f"  accuracy {f(m['accuracy'])}   macro-F1 {f(m['macro_f1'])}   "
                 f"labelled {f(m['labelled_share'])}   ECE {f(m['ece'])}")
    cap = m["coverage_at_precision"]
    lines.append(f"  coverage at precision 0.90: {f(cap['0.90']['coverage'])} "
                 f"(cutoff {f(cap['0.90']['cutoff'])}),  0.95: {f(cap['0.95']['coverage'])} "
                 f"(cutoff {f(cap['0.95']['cutoff'])})")
    lines.append(f"  LLM calls/item {f(m['llm_calls_per_item'], '.2f')}   judge AUC "
                 f"{f(m['judge_auc'])}   items/s {f(m['items_per_second'], '.2f')}   "
                 f"latency p50 {f(m['latency_p50_s'], '.4f')} s  p95 "
                 f"{f(m['latency_p95_s'], '.4f')} s")
    auto = m.get("auto_accepted")
    if auto:
        lines.append(f"  auto-accepted {f(auto['share'])} at cutoff {f(auto['cutoff'])} "
                     f"(target precision {f(auto['target_precision'], '.2f')}): measured "
                     f"precision {f(auto['precision'])}")
    oos = m.get("out_of_scope")
    if oos:
        lines.append(f"  out of scope ({', '.join(report['out_of_scope_labels'])}): "
                     f"{oos['rows']} items, accepted {f(oos['accepted_share'])}, to review "
                     f"{f(oos['needs_review_share'])}, no_match {f(oos['no_match_share'])}; "
                     f"in-scope coverage at 0.95 {f(oos['in_scope_coverage_at_0.95'])}")
    cache = report.get("judge_cache")
    if cache:
        lines.append(f"  judge cache: {cache['hits']} answers reused, {cache['asked']} asked"
                     + ("" if cache["timings_valid"] else " (timings not meaningful)"))
    if m["llm_calls_per_second"]:
        lines.append(f"  LLM calls/s {f(m['llm_calls_per_second'], '.2f')}   share of wall time "
                     f"in the LLM {f(m['llm_time_share'], '.2f')}")
    lines.append("  cutoff  coverage  precision")
    for point in m["precision_coverage"]:
        if point["cutoff"] in (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99):
            lines.append(f"  {point['cutoff']:6.2f}  {point['coverage']:8.3f}  "
                         f"{f(point['precision']):>9s}")
    return "\n".join(lines)
