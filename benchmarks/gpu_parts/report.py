"""The suite's report: the JSON of every part (``--out``) and a Markdown table beside it (same name, ``.md``):
one line per measured setting with its absolute rate and its ratio to the baseline of the same run, then the
checks, then the parts that failed with the end of their error."""

from __future__ import annotations

import json
from pathlib import Path


def _num(x: float | None) -> str:
    if x is None:
        return ""
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"


def _notes(notes: dict) -> str:
    out = []
    for k, v in notes.items():
        if k == "mfu":
            out.append(f"MFU {v:.1%}")
        elif k == "peak_mib":
            out.append(f"peak {v:,} MiB")
        else:
            out.append(f"{k.replace('_', ' ')} {_num(v) if isinstance(v, float) else v}")
    return "; ".join(out)


def markdown(res: dict) -> str:
    """The Markdown report of a suite result (see :func:`gpu_suite.main` for its keys)."""
    kind = "CPU smoke run, toy sizes" if res["smoke"] else "full run"
    lines = [f"# GPU suite on {res['device']}: {kind}", "",
             f"torch {res['torch']}, transformers {res['transformers']}, {res['started']}, "
             f"{res['seconds']:.0f} s in all. Each ratio compares a setting with the baseline named beside it, "
             "measured in the same run (alternated, best of N).", "",
             "| part | measure | setting | rate | unit | baseline | ratio | notes |",
             "|---|---|---|---:|---|---|---:|---|"]
    for name, part in res["parts"].items():
        for r in part.get("result", {}).get("rows", []):
            ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
            lines.append(f"| {name} | {r['measure']} | {r['setting']} | {_num(r['rate'])} | {r['unit']} | "
                         f"{r['baseline'] or ''} | {ratio} | {_notes(r['notes'])} |")
    checks = [(name, c) for name, part in res["parts"].items() for c in part.get("result", {}).get("checks", [])]
    if checks:
        lines += ["", "| part | check | result | detail |", "|---|---|---|---|"]
        for name, c in checks:
            verdict = ("pass" if c["passed"] else "FAIL") if c["applies"] else \
                f"{'met' if c['passed'] else 'not met'} (not a goal in this run)"
            lines.append(f"| {name} | {c['name']} | {verdict} | {c['detail']} |")
    lines += ["", "| part | seconds | status |", "|---|---:|---|"]
    for name, part in res["parts"].items():
        status = "ok" if part["ok"] else "error: " + part["error"].strip().splitlines()[-1][:200].replace("|", "/")
        lines.append(f"| {name} | {part['seconds']:.1f} | {status} |")
    return "\n".join(lines) + "\n"


def write(res: dict, out: Path) -> Path:
    """Writes ``out`` (JSON) and the Markdown beside it; returns the Markdown's path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    md = out.with_suffix(".md")
    md.write_text(markdown(res))
    return md
