"""Colour generalisation on the validation split: image tokenizers on hue-turned and saturated validation photos.

The validation sources share the training photographs' palette, so a recipe that loses unfamiliar colours can
still score well on them (issue 25: the f16 recipe beat k-means on validation and lost 1.8 dB on held-out
sources, where it turned an orange bowl green). This turns every validation crop's hue by a few angles
(``torchvision``'s ``adjust_hue``: a fraction of a full turn) and raises its saturation by a few factors
(``adjust_saturation``), optionally darkens it by a few factors (``adjust_brightness``: dark, low-contrast
photographs, such as the held-out DarkestHour, where k-means scores high), and scores each tokenizer and pixel
k-means (same patch and codes, fitted on the *unturned* training photographs, as a user would fit it) on them: the
palettes no training photograph has, made from training-side sources only, so recipes can be chosen on it
without looking at the held-out set.

    python benchmarks/unseen_palettes.py --experiment image_f16 --tokenizers RUN/tokenizer/image OTHER/tokenizer/image

Writes ``--out`` (JSON) and a Markdown table beside it: per tokenizer and palette (hue turn, saturation factor),
PSNR, CIEDE2000 and mean-colour shift, each against k-means, and the mean over the turned palettes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from torchvision.transforms.v2.functional import adjust_brightness, adjust_hue, adjust_saturation

from modalities.config import register_configs
from modalities.data.datasets import center_crop_multiple
from modalities.data.io import IMAGE_SUFFIXES, load_image
from modalities.eval.baselines import fit_patch_kmeans
from modalities.eval.metrics import ciede2000, image_scores
from modalities.image import ImageTokenizer
from modalities.tasks.vq import media_split

REPO = Path(__file__).resolve().parents[1]
KEYS = ("psnr", "ciede2000", "colour_shift")


def validation_images(experiment: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The ``experiment``'s training and validation photographs of ``task.split=validation``: ``[3, H, W]`` each;
    the validation ones centre-cropped to ``task.val_size`` (a multiple of 16), as training validation does."""
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={experiment}", "task.split=validation"])
    _, train, val = media_split(cfg, "images", "images", IMAGE_SUFFIXES)
    return [load_image(p) for p in train], [center_crop_multiple(load_image(p), 16, cfg.task.val_size) for p in val]


@torch.inference_mode()
def score(code, images: list[torch.Tensor]) -> dict[str, float]:
    """Mean per-image scores of ``code(x[None])`` (``[1, 3, H, W]``) against ``images`` (``[3, H, W]`` in
    [0, 1])."""
    rows = [image_scores(code(x[None]).cpu(), x[None]) for x in images]
    return {k: float(sum(r[k][0] for r in rows) / len(rows)) for k in KEYS}


def kmeans_baselines(toks: dict[str, ImageTokenizer], train: list[torch.Tensor], seed: int = 0) -> dict:
    """Pixel k-means for each (patch, codes) of ``toks``, fitted once on the unturned ``train`` photographs, as a
    user would fit it: ``{(f, codes): code}``, ``code(x[3, H, W]) -> [3, H, W]``."""
    return {(f, k): fit_patch_kmeans(train, f, k, seed=seed)
            for f, k in sorted({(t.model.downsample, t.model.quantizer.codebook_size) for t in toks.values()})}


def palettes(toks: dict[str, ImageTokenizer], kmeans: dict, val: list[torch.Tensor],
             hues: list[float], saturations: list[float], brightness: list[float] = (1.0,)) -> list[dict]:
    """One row per tokenizer and palette (hue turn, saturation factor, brightness factor): its mean scores on
    ``val`` so turned, and those of pixel k-means (same patch and codes; :func:`kmeans_baselines`)."""
    rows = []
    for hue, sat, light in [(h, s, b) for b in brightness for s in saturations for h in hues]:
        turned = [adjust_brightness(adjust_saturation(adjust_hue(x, hue) if hue else x, sat).clamp(0, 1), light)
                  for x in val]
        base = {fk: score(lambda x, q=q: q(x[0])[None], turned) for fk, q in kmeans.items()}
        for name, tok in toks.items():
            b = base[tok.model.downsample, tok.model.quantizer.codebook_size]
            ours = score(lambda x, t=tok: t.decode(t.encode(x)), turned)
            rows.append({"tokenizer": name, "hue": hue, "saturation": sat, "brightness": light, **ours,
                         **{f"kmeans_{k}": v for k, v in b.items()}, "margin_db": ours["psnr"] - b["psnr"]})
            print(f"hue {hue:+.3f} saturation x{sat:g} brightness x{light:g} {name}: {ours['psnr']:.2f} dB "
                  f"(k-means {b['psnr']:.2f}), "
                  f"CIEDE2000 {ours['ciede2000']:.2f} ({b['ciede2000']:.2f})", flush=True)
    return rows


# saturated flat colours, sRGB in [0, 1]: what a photograph of flowers, fruit or paint is made of
SWATCHES = {"red": (0.9, 0.1, 0.1), "orange": (1.0, 0.4, 0.0), "yellow": (0.95, 0.85, 0.1), "green": (0.1, 0.7, 0.1),
            "cyan": (0.1, 0.75, 0.8), "blue": (0.1, 0.2, 0.9), "purple": (0.5, 0.1, 0.7), "pink": (0.9, 0.4, 0.7)}


@torch.inference_mode()
def swatches(toks: dict[str, ImageTokenizer], kmeans: dict) -> list[dict]:
    """One row per tokenizer and flat colour of :data:`SWATCHES` (a ``4f x 4f`` image of it): the mean colour it
    comes back as and its CIEDE2000, beside pixel k-means' (same patch and codes; :func:`kmeans_baselines`). A
    recipe whose codes cannot decode to a saturated colour shows it here without any held-out photograph."""
    rows = []
    for colour, rgb in SWATCHES.items():
        for name, tok in toks.items():
            f = tok.model.downsample
            x = torch.tensor(rgb).view(1, 3, 1, 1).expand(1, 3, 4 * f, 4 * f).contiguous()
            ours, base = tok.decode(tok.encode(x)).cpu(), kmeans[f, tok.model.quantizer.codebook_size](x[0])[None]
            rows.append({"tokenizer": name, "colour": colour, "rgb": list(rgb),
                         "decoded": [round(v, 3) for v in ours.mean((0, 2, 3)).tolist()],
                         "ciede2000": float(ciede2000(ours, x)[0]), "kmeans_ciede2000": float(ciede2000(base, x)[0])})
    return rows


UNTURNED = (0.0, 1.0, 1.0)  # (hue turn, saturation, brightness) of the photographs as they are: the reference


def summarise(rows: list[dict]) -> list[dict]:
    """Per tokenizer, the means over the turned palettes (every row but hue 0 at saturation and brightness x1)."""
    out = []
    for name in dict.fromkeys(r["tokenizer"] for r in rows):
        mine = [r for r in rows if r["tokenizer"] == name
                and (r["hue"], r["saturation"], r.get("brightness", 1.0)) != UNTURNED]
        out.append({"tokenizer": name, **{k: sum(r[k] for r in mine) / len(mine) for k in
                                          ("psnr", "kmeans_psnr", "margin_db", "ciede2000", "kmeans_ciede2000")}})
    return out


def markdown(rows: list[dict], summary: list[dict], experiment: str, files: int, flat: list[dict] = ()) -> str:
    def short(name: str) -> str:  # <run>/tokenizer/image -> <run>
        return Path(name).parts[-3] if len(Path(name).parts) > 2 else name

    lines = [f"# Unseen palettes: {files} validation photographs (`{experiment}` validation split), hue-turned, "
             "saturated or darkened", "",
             "Mean over the turned palettes (all but hue 0 at saturation and brightness x1):", "",
             "| tokenizer | PSNR (k-means) | margin | CIEDE2000 (k-means) |", "|---|---|---|---|"]
    lines += [f"| {short(m['tokenizer'])} | {m['psnr']:.2f} ({m['kmeans_psnr']:.2f}) | {m['margin_db']:+.2f} | "
              f"{m['ciede2000']:.2f} ({m['kmeans_ciede2000']:.2f}) |" for m in summary]
    lines += ["", "| tokenizer | hue turn | saturation | brightness | PSNR (k-means) | margin | CIEDE2000 (k-means) "
              "| colour shift (k-means) |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {short(r['tokenizer'])} | {r['hue']:+.3f} | x{r['saturation']:g} | x{r.get('brightness', 1.0):g} "
              f"| {r['psnr']:.2f} "
              f"({r['kmeans_psnr']:.2f}) | {r['margin_db']:+.2f} | {r['ciede2000']:.2f} ({r['kmeans_ciede2000']:.2f}) "
              f"| {r['colour_shift']:.3f} ({r['kmeans_colour_shift']:.3f}) |" for r in rows]
    if flat:
        lines += ["", "Flat saturated swatches (CIEDE2000; above 10 is another colour):", "",
                  "| tokenizer | colour | sRGB | decoded as | CIEDE2000 (k-means) |", "|---|---|---|---|---|"]
        lines += [f"| {short(r['tokenizer'])} | {r['colour']} | {tuple(r['rgb'])} | {tuple(r['decoded'])} "
                  f"| {r['ciede2000']:.1f} ({r['kmeans_ciede2000']:.1f}) |" for r in flat]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="image_small", help="the recipe whose validation split is scored")
    ap.add_argument("--tokenizers", nargs="+", type=Path, required=True, help="saved tokenizer folders")
    ap.add_argument("--hues", nargs="+", type=float, default=[0.0, 0.25, 0.5, -0.25],
                    help="hue turns, fractions of a full turn in [-0.5, 0.5]")
    ap.add_argument("--saturations", nargs="+", type=float, default=[1.0, 2.0],
                    help="saturation factors (adjust_saturation, 1 = unchanged), each combined with every hue")
    ap.add_argument("--brightness", nargs="+", type=float, default=[1.0],
                    help="brightness factors (adjust_brightness, 1 = unchanged, 0.3 = dark), each combined with "
                         "every hue and saturation")
    ap.add_argument("--seed", type=int, default=0, help="seed of the k-means fit")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/unseen_palettes.json")
    args = ap.parse_args()
    if any(abs(h) > 0.5 for h in args.hues):
        ap.error(f"--hues must lie in [-0.5, 0.5], got {args.hues}")
    if any(v < 0 for v in args.saturations):
        ap.error(f"--saturations must be >= 0, got {args.saturations}")
    if any(v <= 0 or v > 1 for v in args.brightness):
        ap.error(f"--brightness must lie in (0, 1] (darker photographs), got {args.brightness}")
    if not any((h, s, b) != UNTURNED for h in args.hues for s in args.saturations for b in args.brightness):
        ap.error("--hues, --saturations and --brightness give only the unturned palette (hue 0, x1, x1): "
                 "nothing to score; add a turn, e.g. --hues 0 0.25")
    train, val = validation_images(args.experiment)
    toks = {str(p): ImageTokenizer.from_pretrained(p) for p in args.tokenizers}
    kmeans = kmeans_baselines(toks, train, args.seed)
    rows = palettes(toks, kmeans, val, args.hues, args.saturations, args.brightness)
    summary, flat = summarise(rows), swatches(toks, kmeans)
    for name in toks:
        mine = [r for r in flat if r["tokenizer"] == name]
        worst = max(mine, key=lambda r: r["ciede2000"])
        print(f"flat swatches {name}: mean CIEDE2000 {sum(r['ciede2000'] for r in mine) / len(mine):.1f}, worst "
              f"{worst['colour']} {worst['ciede2000']:.1f} (decoded as {tuple(worst['decoded'])})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "unseen_palettes", "experiment": args.experiment,
                                    "validation_files": len(val), "rows": rows, "summary": summary,
                                    "swatches": flat}, indent=1))
    args.out.with_suffix(".md").write_text(markdown(rows, summary, args.experiment, len(val), flat))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
