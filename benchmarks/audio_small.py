"""The ``audio_small`` headline (issue 25, item 3): speech tokens at 2 kbit/s, decoded through the learned vocoder,
on held-out speakers and collections, beside today's 400 bit/s tokens and Opus at its lowest rate, per collection.

Per seed, each stage a ``python train.py`` run (reused when it finished before; a killed one resumes):

1. ``experiment=audio_small`` (f2, 4 x 1024 residual codes, 2000 bits/s);
2. ``experiment=audio_debug`` (400 bits/s), the tokens it replaces;
3. ``task=vocoder task.tokenizer=<1>``: the learned vocoder on the training speakers' true mels, scored on the
   held-out clips from the true mel and from ``audio_small``'s tokens, beside Griffin-Lim (per collection);
4. the same vocoder (``trainer.resume_from``, no new training) scored from ``audio_debug``'s tokens;
5. ``task=evaluate`` of both vocoded tokenizers and Opus at ``--opus`` bits/s on the same held-out clips (its
   STOI-against-rate plot, first seed, is copied to ``--figure``).

``--split validation`` runs stages 1 and 2 only, on a validation split of the training sources (their
Griffin-Lim and log-mel scores), to choose a recipe without the held-out clips; ``--set`` adds overrides to
stage 1 (they name its folder).

    python benchmarks/audio_small.py                                  # the headline, seeds 0 and 1
    python benchmarks/audio_small.py --split validation --seeds 0 --steps 1000 --set quantizer.codebook_size=256
    python benchmarks/audio_small.py --seeds 0 --steps 20 --vocoder-steps 20 --runs /tmp/as   # smoke
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from image_heldout import _label, base_config

from modalities.tasks.demo import run_stage

METRICS = ("pesq", "stoi")
DECODINGS = {"vocoder": "vocoder, true mel", "griffin_lim": "Griffin-Lim, true mel",
             "tokens_vocoder": "vocoder, from tokens", "tokens_griffin_lim": "Griffin-Lim, from tokens"}


def _collections(metrics: dict) -> list[str]:
    """The collections the vocoder stage reported apart (``heldout_<c>_clips``), sorted."""
    return sorted(k[len("heldout_"):-len("_clips")] for k in metrics if k.startswith("heldout_") and k.endswith("_clips"))


def _scores(metrics: dict, decoding: str, collections: list[str]) -> dict:
    """``{"all": {"pesq":, "stoi":}, <collection>: {...}}`` of one decoding in a vocoder stage's metrics."""
    out = {"all": {m: metrics[f"heldout_{decoding}_{m}"] for m in METRICS}}
    for c in collections:
        out[c] = {m: metrics[f"heldout_{c}_{decoding}_{m}"] for m in METRICS}
    return out


def _tokenizer(runs: Path, stage: str) -> Path:
    """The audio tokenizer a stage saved."""
    return runs / stage / "tokenizer" / "audio"


def run_seed(seed: int, split: str, steps: int | None, vocoder_steps: int | None, opus: float, runs: Path,
             extra: list[str], decoded_share: float = 0.0) -> dict:
    """Every stage of one seed; returns its row (bits/s, scores per decoding and collection, Opus)."""
    base = base_config("audio_small", extra, seed)  # every stage takes its data.* (a --set data.audio=DIR too) and seed
    common = [f"seed={seed}", f"+task.split={split}"]
    small_name = "_".join(["audio_small", split, *(_label(x) for x in extra), f"s{seed}", str(steps or "full")])
    small = run_stage(base, runs, small_name, ["experiment=audio_small", *common,
                                                *([f"trainer.max_steps={steps}"] if steps else []), *extra])
    debug_name = f"audio_debug_{split}_s{seed}"
    debug = run_stage(base, runs, debug_name, ["experiment=audio_debug", "task.baseline=false", *common])
    row = {"seed": seed, "split": split, "run": small_name, "bits_per_second": small["bits_per_second"],
           "debug_bits_per_second": debug["bits_per_second"], "train_seconds": small["train_seconds"],
           "validation": {k: small[k] for k in ("val_mel_l1_db", "val_pesq", "val_stoi", "val_usage") if k in small},
           "debug_validation": {k: debug[k] for k in ("val_mel_l1_db", "val_pesq", "val_stoi") if k in debug}}
    if split == "validation":
        return row
    voc_over = ["task=vocoder", f"seed={seed}", *([f"task.max_steps={vocoder_steps}"] if vocoder_steps else []),
                *([f"task.decoded_share={decoded_share}"] if decoded_share else [])]  # runs named before it are reused
    label = f"{vocoder_steps or 'full'}" + (f"_decoded{decoded_share:g}" if decoded_share else "")
    voc_name, ev_name = f"vocoder_s{seed}_{label}", f"evaluate_s{seed}_{label}"
    voc = run_stage(base, runs, voc_name, [*voc_over, f"task.tokenizer={_tokenizer(runs, small_name)}"])
    voc_debug = run_stage(base, runs, f"{voc_name}_debug", [
        *voc_over, f"task.tokenizer={_tokenizer(runs, debug_name)}",
        f"trainer.resume_from={runs / voc_name / 'checkpoints' / 'last.pt'}"])
    cols = _collections(voc)
    row["decoded_share"] = decoded_share
    row["collections"] = {c: voc[f"heldout_{c}_clips"] for c in cols}
    row["small"] = {d: _scores(voc, d, cols) for d in DECODINGS}
    row["debug"] = {d: _scores(voc_debug, d, cols) for d in ("tokens_vocoder", "tokens_griffin_lim")}
    folders = [_tokenizer(runs, voc_name), _tokenizer(runs, f"{voc_name}_debug")]  # each with the vocoder inside
    run_stage(base, runs, ev_name, ["task=evaluate", f"seed={seed}", f"task.tokenizers=[{','.join(map(str, folders))}]",
                                    f"task.rates.audio=[{opus}]"])
    ev = json.loads((runs / ev_name / "evaluation.json").read_text())["audio"]
    row["figure"] = str(runs / ev_name / "rd_audio_stoi.png")  # task=evaluate's STOI-against-rate plot
    row["evaluate"] = [{k: r.get(k) for k in ("name", "kind", "bits_per_second", "pesq", "stoi", "si_sdr",
                                              "mel_distance")} for r in ev]
    return row


def markdown(rows: list[dict]) -> str:
    """One table per seed: PESQ / STOI of each decoding, over all held-out clips and per collection."""
    lines = ["# audio_small: held-out speech decoded through the learned vocoder", ""]
    for r in rows:
        v = r["validation"]
        lines += [f"## seed {r['seed']} ({r['split']}, {r['run']}): {r['bits_per_second']:g} bits/s, "
                  f"trained {r['train_seconds']:.0f} s", "",
                  f"Validation during training (Griffin-Lim): log-mel L1 {v.get('val_mel_l1_db', 0):.2f} dB, "
                  f"PESQ {v.get('val_pesq', 0):.2f}, STOI {v.get('val_stoi', 0):.3f}; audio_debug "
                  f"({r['debug_bits_per_second']:g} bits/s): {r['debug_validation'].get('val_mel_l1_db', 0):.2f} dB, "
                  f"{r['debug_validation'].get('val_pesq', 0):.2f}, {r['debug_validation'].get('val_stoi', 0):.3f}", ""]
        if "small" not in r:
            continue
        cols = ["all", *r["collections"]]
        if r.get("decoded_share"):
            lines += [f"The vocoder trained with `task.decoded_share={r['decoded_share']:g}` (that share of each batch "
                      "vocoded from audio_small's decoded mel).", ""]
        lines += ["| decoding | " + " | ".join(f"{c} ({r['collections'].get(c, '')} clips) PESQ / STOI" if c != "all"
                                                 else "all PESQ / STOI" for c in cols) + " |",
                  "|---|" + "---|" * len(cols)]
        table = [(f"audio_small ({r['bits_per_second']:g} b/s): {DECODINGS[d]}", r["small"][d]) for d in DECODINGS]
        table += [(f"audio_debug ({r['debug_bits_per_second']:g} b/s): {DECODINGS[d]}", r["debug"][d])
                  for d in r["debug"]]
        for name, s in table:
            lines.append(f"| {name} | " + " | ".join(f"{s[c]['pesq']:.2f} / {s[c]['stoi']:.3f}" for c in cols) + " |")
        lines += ["", "`task=evaluate` on the same held-out clips (mean over all):", "",
                  "| name | bits/s | PESQ | STOI | SI-SDR | mel distance |", "|---|---|---|---|---|---|"]
        for e in r["evaluate"]:
            lines.append(f"| {e['name']} | {e['bits_per_second']:.0f} | {e['pesq']:.2f} | {e['stoi']:.3f} | "
                         f"{e['si_sdr']:.1f} | {e['mel_distance']:.2f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["heldout", "validation"], default="heldout")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--steps", type=int, default=None, help="audio_small's trainer.max_steps (default: the recipe's)")
    ap.add_argument("--vocoder-steps", type=int, default=None, help="task.max_steps of the vocoder (default: task=vocoder's, 4000)")
    ap.add_argument("--decoded-share", type=float, default=0.0,
                    help="the vocoder's task.decoded_share: share of its training batches vocoded from audio_small's "
                         "decoded mel")
    ap.add_argument("--opus", type=float, default=6000.0, help="Opus bits/s (6000: about its lowest for speech)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more overrides of audio_small's run")
    ap.add_argument("--runs", type=Path, default=Path("benchmarks/results/audio_runs"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/audio_small.json"))
    ap.add_argument("--figure", type=Path, default=Path("benchmarks/figures/audio_small_stoi.png"),
                    help="where the first seed's STOI-against-rate plot is copied (docs/audio.md shows it)")
    args = ap.parse_args()
    rows = [run_seed(s, args.split, args.steps, args.vocoder_steps, args.opus, args.runs.resolve(), args.set,
                     args.decoded_share) for s in args.seeds]
    table = markdown(rows)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "audio_small", "rows": rows}, indent=2, default=str) + "\n")
    args.out.with_suffix(".md").write_text(table)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    if rows and "figure" in rows[0]:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(rows[0]["figure"], args.figure)
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
