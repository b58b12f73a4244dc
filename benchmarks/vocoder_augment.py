"""The vocoder's training-speech augmentation (issue 25, item 2): ``task=vocoder`` recipes, per seed, each decoding
the *true* mel of held-out speech beside Griffin-Lim from the same mel, over all clips and per collection.

Each recipe is one string of ``task=vocoder`` overrides (``""``: the task's defaults); each run is a
``python train.py task=vocoder seed=<s> <recipe>`` stage in ``--runs/<split>_<recipe label>_s<seed>``, reused when
it finished before (a killed one resumes). ``--split validation`` scores on a validation split of the training
sources (``+task.split=validation``) to choose a recipe; ``heldout`` (the default) on the held-out speakers and
collections, to report it. About 4 minutes a run of 2000 steps on 2 CPU cores, 9 of 4000 (the default).

    python benchmarks/vocoder_augment.py            # held out: no augmentation, then speed 0.1 (2000 steps each)
    python benchmarks/vocoder_augment.py --split validation --seeds 0 1 \\
        --recipes "task.augment.speed=0.1 task.max_steps=2000" "task.augment.speed=0.1 task.max_steps=4000" \\
        --out benchmarks/results/vocoder_steps_validation.json   # the default's steps, chosen; then held out:
    python benchmarks/vocoder_augment.py --seeds 0 1 \\
        --recipes "task.augment.speed=0.1 task.max_steps=2000" "task.augment.speed=0.1 task.max_steps=4000" \\
        --out benchmarks/results/vocoder_steps_heldout.json --figure benchmarks/figures/vocoder_heldout.png

Writes ``--out`` (JSON), a Markdown table beside it (PESQ / STOI of the vocoder and of Griffin-Lim, and the
collections where the vocoder beats Griffin-Lim on both) and a bar chart of the same (``.png``; ``--figure`` copies
it, e.g. into ``benchmarks/figures/``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from audio_small import _collections, _scores
from image_heldout import _label, base_config

from modalities.eval.viz import save_figure
from modalities.tasks.demo import run_stage

DEFAULT_RECIPES = ["task.augment.speed=0 task.max_steps=2000", "task.augment.speed=0.1 task.max_steps=2000"]  # as measured


def recipe_label(recipe: str) -> str:
    """``"task.augment.speed=0.1 task.max_steps=4000"`` -> ``speed=0.1_max_steps=4000`` (``""`` -> ``default``)."""
    return "_".join(_label(x) for x in recipe.split()) or "default"


def run_recipe(recipe: str, seed: int, split: str, runs: Path, extra: list[str] = ()) -> dict:
    """One vocoder run; returns its row: the recipe, seed, training seconds and, for ``vocoder`` and
    ``griffin_lim``, ``{"all" | <collection>: {"pesq", "stoi"}}``, plus the clips per collection."""
    base = base_config("audio_small", extra, seed)  # only its data.* (a --set data.audio=DIR too) and seed are used
    name = f"{split}_{recipe_label(recipe)}_s{seed}"
    split_over = ["+task.split=validation"] if split == "validation" else []
    m = run_stage(base, runs, name, ["task=vocoder", f"seed={seed}", *split_over, *recipe.split()])
    cols = _collections(m)
    return {"recipe": recipe or "(defaults)", "seed": seed, "split": split, "run": name,
            "train_seconds": m.get("train_seconds"), "collections": {c: m[f"heldout_{c}_clips"] for c in cols},
            **{d: _scores(m, d, cols) for d in ("vocoder", "griffin_lim")}}


def wins(row: dict) -> list[str]:
    """The groups (``all`` and collections) where the vocoder beats Griffin-Lim in both PESQ and STOI."""
    return [g for g, v in row["vocoder"].items()
            if v["pesq"] > row["griffin_lim"][g]["pesq"] and v["stoi"] > row["griffin_lim"][g]["stoi"]]


def markdown(rows: list[dict]) -> str:
    """One line per run and one for Griffin-Lim per seed: PESQ / STOI over all clips and per collection."""
    groups = list(rows[0]["vocoder"]) if rows else []
    head = ["decoding (true mel)", "seed", *groups, "vocoder beats Griffin-Lim on"]
    lines = [f"# The learned vocoder from the true mel, {rows[0]['split'] if rows else ''} split", "",
             "PESQ / STOI per group (clips: " + ", ".join(f"{c} {n}" for c, n in
                                                           (rows[0]["collections"].items() if rows else [])) + ")",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    fmt = lambda s: f"{s['pesq']:.2f} / {s['stoi']:.3f}"  # noqa: E731
    for seed in sorted({r["seed"] for r in rows}):
        for r in (r for r in rows if r["seed"] == seed):
            lines.append(f"| vocoder, `{r['recipe']}` | {seed} | " + " | ".join(fmt(r["vocoder"][g]) for g in groups)
                         + f" | {', '.join(wins(r)) or 'none'} |")
        gl = next(r for r in rows if r["seed"] == seed)["griffin_lim"]
        lines.append(f"| Griffin-Lim | {seed} | " + " | ".join(fmt(gl[g]) for g in groups) + " | |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> Path:
    """A PNG of two panels (PESQ, STOI): per group (``all`` and collections) a bar per recipe and one for
    Griffin-Lim, each the mean over seeds, with every seed's value as a dot; returns ``path``."""
    from matplotlib.figure import Figure

    groups = list(rows[0]["vocoder"])
    series = {f"vocoder, {recipe}": [r["vocoder"] for r in rows if r["recipe"] == recipe]
              for recipe in dict.fromkeys(r["recipe"] for r in rows)}
    series["Griffin-Lim"] = [r["griffin_lim"] for r in {r["seed"]: r for r in rows}.values()]  # the same per seed
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    width, axes = 0.8 / len(series), fig.subplots(1, 2)
    for ax, metric in zip(axes, ("pesq", "stoi"), strict=True):
        for i, (label, per_seed) in enumerate(series.items()):
            xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
            vals = [[s[g][metric] for s in per_seed] for g in groups]
            ax.bar(xs, [sum(v) / len(v) for v in vals], width, label=label)
            for x, v in zip(xs, vals, strict=True):
                ax.plot([x] * len(v), v, "k.", ms=3)
        low = min(s[g][metric] for per_seed in series.values() for s in per_seed for g in groups)
        ax.set_ylim(low - (0.3 if metric == "pesq" else 0.05), None)
        ax.set_xticks(range(len(groups)), groups)
        ax.set(ylabel=f"{metric.upper()} (higher is better)", title=f"{metric.upper()} from the true mel, "
               f"{rows[0]['split'].replace('heldout', 'held-out')} clips")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["heldout", "validation"], default="heldout")
    ap.add_argument("--recipes", nargs="+", default=DEFAULT_RECIPES,
                    help='each a string of task=vocoder overrides ("" for the defaults)')
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--set", nargs="*", default=[], metavar="data.KEY=VALUE", help="data overrides of every run")
    ap.add_argument("--runs", type=Path, default=Path("benchmarks/results/vocoder_runs"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/vocoder_augment_heldout.json"))
    ap.add_argument("--figure", type=Path, default=None, help="a copy of the bar chart, e.g. benchmarks/figures/...")
    args = ap.parse_args()
    rows = [run_recipe(r, s, args.split, args.runs.resolve(), args.set) for s in args.seeds for r in args.recipes]
    table = markdown(rows)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "vocoder_augment", "split": args.split, "rows": rows}, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table)
    png = plot(rows, args.out.with_suffix(".png"))
    if args.figure:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, args.figure)
    print(f"wrote {args.out}, {args.out.with_suffix('.md')} and {png}")


if __name__ == "__main__":
    main()
