"""The ``image_small`` headline: the f8 tokenizer (256 codes, 0.125 bpp) against pixel k-means at the same bits,
on held-out sources only, per source and on the sources pinned for their palettes, with the colour errors.

Two uses, one script:

* **report** (default): the shipped recipe, ``python train.py experiment=image_small seed=<s>`` for seeds 0
  and 1 (about 14 minutes each on 2 CPU cores), scored on the held-out sources (``task.split=heldout``);
* **choose** (``--split validation``): recipes compared on a validation split of the *training* sources
  (``task.split=validation``), never on the held-out ones; ``--colour`` lists the colour-jitter settings to
  compare (``none`` or ``brightness,saturation,hue``), ``--steps`` shortens the runs.

``--experiment`` names another image recipe (``conf/experiment/<name>.yaml``; its run folders start with the
name). Each run lands in ``--runs/<split>_<colour>[_<override>...]_s<seed>_<steps>`` (the shipped recipe's folder is
named by a hash of its settings) and is reused when it finished before (a killed run resumes). Writes ``--out`` (JSON) and a Markdown table beside it.

    python benchmarks/image_heldout.py                                             # the headline, 2 seeds
    python benchmarks/image_heldout.py --split validation --steps 2500 --colour none 0.2,0.5,0.5 \\
        --out benchmarks/results/image_validation.json                             # how the recipe was chosen
    python benchmarks/image_heldout.py --split validation --steps 2500 --seeds 0 --colour 0.2,0.5,0.5 \
        --set tokenizer.image.norm=pixel --out benchmarks/results/image_validation_pixel.json   # another recipe
    python benchmarks/image_heldout.py --steps 20 --seeds 0 --runs /tmp/ih --out /tmp/ih.json   # smoke
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from modalities.config import register_configs
from modalities.tasks.demo import run_stage

REPO = Path(__file__).resolve().parents[1]
KEYS = ("val_psnr", "baseline_psnr", "val_ssim", "baseline_ssim", "val_ciede2000", "baseline_ciede2000",
        "val_colour_shift", "baseline_colour_shift", "worst_source", "worst_source_margin_db", "palette_psnr",
        "palette_baseline_psnr", "palette_ciede2000", "palette_baseline_ciede2000", "val_usage", "steps",
        "stage_seconds")


def _colour_arg(text: str) -> list[float] | None | str:
    if text in ("none", "shipped"):
        return None if text == "none" else text
    parts = [float(x) for x in text.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"--colour takes 'none' or brightness,saturation,hue, got {text!r}")
    return parts


def _label(override: str) -> str:
    """``tokenizer.image.norm=pixel`` -> ``norm=pixel``: a run folder's name part, without path separators."""
    key, _, value = override.partition("=")
    return f"{key.rsplit('.', 1)[-1]}={value}".replace("/", "-").replace(",", "-")


def _name(colour: list[float] | None) -> str:
    return "none" if colour is None else "-".join(f"{c:g}" for c in colour)


def base_config(experiment: str, extra: list[str] = (), seed: int | None = None) -> DictConfig:
    """The composed ``experiment`` with the ``data.*`` ones of ``extra`` (and ``seed`` when given): each stage takes
    its data settings and seed from this config (:func:`~modalities.tasks.demo.compose_stage`), so a ``--set
    data.images=DIR`` must land here."""
    register_configs()
    data = [x for x in extra if x.lstrip("+").startswith("data.")]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=[f"experiment={experiment}", "show_progress=false", *data,
                                                        *([f"seed={seed}"] if seed is not None else [])])


def run(split: str, colours: list[list[float] | None | str], seeds: list[int], steps: int | None,
        runs: Path, extra: list[str] = (), experiment: str = "image_small") -> dict:
    """Trains (or reuses) one run per colour setting and seed of ``experiment``; returns the rows and per-source
    tables."""
    base = base_config(experiment, extra)
    rows, sources = [], {}
    for colour in colours:
        for seed in seeds:
            over = [f"experiment={experiment}", f"seed={seed}", f"task.split={split}"]
            if colour != "shipped":
                over.append("task.colour=null" if colour is None else f"task.colour=[{','.join(map(str, colour))}]")
            if steps is not None:
                over.append(f"trainer.max_steps={steps}")
            over += extra
            recipe = "shipped" if colour == "shipped" else _name(colour)
            if recipe == "shipped":  # named by a hash of the recipe's settings: a changed recipe is a new run
                settings = OmegaConf.to_yaml({k: base[k] for k in ("task", "tokenizer", "quantizer", "trainer")})
                recipe = f"shipped-{zlib.crc32(settings.encode()):08x}"
            prefix = [] if experiment == "image_small" else [experiment]
            name = "_".join([*prefix, split, recipe, *(_label(x) for x in extra), f"s{seed}", str(steps or "full")])
            t0 = time.perf_counter()
            m = run_stage(base_config(experiment, extra, seed), runs, name, over)  # each stage takes this seed
            row = {"run": name, "split": split, "colour": recipe, "seed": seed, "command":
                   "python train.py " + " ".join(over)} | {k: m[k] for k in KEYS if k in m}
            if "baseline_psnr" not in m:
                raise ValueError(f"{name}: no k-means baseline in the run (task.baseline=false?): nothing to compare")
            row["margin_db"] = m["val_psnr"] - m["baseline_psnr"]
            row["wall_seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            sources[name] = m.get("heldout_sources", {})
    return {"benchmark": "image_heldout", "experiment": experiment, "split": split, "rows": rows,
            "per_source": sources}


def short(source: str) -> str:
    """A source's short name: ``FallenLeaf`` for a plasma wallpaper's folder, else the file's stem."""
    parts = Path(source).parts
    return parts[parts.index("wallpapers") + 1] if "wallpapers" in parts[:-1] else Path(source).stem


def markdown(res: dict) -> str:
    """The rows as a table, then one per-source table per run."""
    lines = [f"# {res.get('experiment', 'image_small')} on the {res['split']} split", "",
             "| run | PSNR | k-means | margin | worst source (margin) | ΔE00 (k-means) | colour shift (k-means) "
             "| palette PSNR (k-means) | palette ΔE00 (k-means) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        pal = (f"{r['palette_psnr']:.2f} ({r['palette_baseline_psnr']:.2f}) | {r['palette_ciede2000']:.2f} "
               f"({r['palette_baseline_ciede2000']:.2f})") if "palette_psnr" in r else "- | -"
        lines.append(f"| {r['run']} | {r['val_psnr']:.2f} | {r['baseline_psnr']:.2f} | {r['margin_db']:+.2f} | "
                     f"{short(str(r.get('worst_source', '-')))} ({r.get('worst_source_margin_db', 0):+.2f}) | "
                     f"{r['val_ciede2000']:.2f} ({r['baseline_ciede2000']:.2f}) | {r['val_colour_shift']:.3f} "
                     f"({r['baseline_colour_shift']:.3f}) | {pal} |")
    for name, per in res["per_source"].items():
        if not per:
            continue
        lines += ["", f"## {name}: per source", "", "| source | files | PSNR | k-means | margin | ΔE00 | k-means ΔE00 |",
                  "|---|---|---|---|---|---|---|"]
        for s, v in sorted(per.items(), key=lambda kv: kv[1]["margin_db"]):
            lines.append(f"| {short(s)} | {v['files']} | {v['psnr']:.2f} | {v['baseline_psnr']:.2f} | {v['margin_db']:+.2f} | "
                         f"{v['ciede2000']:.2f} | {v['baseline_ciede2000']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="image_small", help="the recipe (conf/experiment/<name>.yaml)")
    ap.add_argument("--split", choices=["heldout", "validation"], default="heldout")
    ap.add_argument("--colour", nargs="+", type=_colour_arg, default=["shipped"],
                    help="colour-jitter settings to compare: none or b,s,h (default: the shipped recipe's)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--steps", type=int, default=None, help="trainer.max_steps (default: the recipe's 5000)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="more overrides for every run, e.g. tokenizer.image.norm=pixel (they name the run folders)")
    ap.add_argument("--runs", type=Path, default=Path("benchmarks/results/image_runs"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/image_heldout.json"))
    args = ap.parse_args()
    res = run(args.split, args.colour, args.seeds, args.steps, args.runs, args.set, args.experiment)
    table = markdown(res)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=str) + "\n")
    args.out.with_suffix(".md").write_text(table)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
