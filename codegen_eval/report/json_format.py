"""JSON renderings: the comparison of two runs and the multi-run report (machine-readable, stable keys)."""

from __future__ import annotations

import dataclasses
import json

from codegen_eval import __version__
from codegen_eval.report.model import ReportModel
from codegen_eval.summaries import PRIMARY, Comparison


def compare_json(c: Comparison) -> str:
    return json.dumps(c.to_json(), indent=2) + "\n"


def report_json(model: ReportModel) -> str:
    runs = []
    for label, run, curve in zip(model.labels, model.runs, model.curves, strict=True):
        scorers = {
            name: dataclasses.replace(block, per_problem=None).to_json() for name, block in run.summary.scorers.items()
        }
        runs.append(
            {
                "label": label,
                "path": str(run.path),
                "bench": run.bench,
                "model": run.model,
                "turns": run.turns,
                "n": run.n,
                "k": list(run.ks),
                "status": run.meta.status or "",
                "config_hash": run.summary.config_hash or "",
                "problems": run.summary.problems,
                "items": len(run.counts[PRIMARY]),
                "outcomes": dict(run.outcomes()),
                "scorers": scorers,
                "pass_at_k_curve": [p.to_json() for p in curve],
            }
        )
    data = {
        "generated_at": model.generated_at,
        "codegen_eval_version": __version__,
        "runs": runs,
        "comparisons": [c.to_json() for c in model.comparisons],
        "turn_pairs": [
            {"single": model.labels[p.single], "multi": model.labels[p.multi], "comparison": p.comparison.to_json()}
            for p in model.turn_pairs
        ],
        "analyses": model.analyses.to_json(),
    }
    return json.dumps(data, indent=2) + "\n"
