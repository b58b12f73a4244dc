"""Evaluation wing: how good a tokenizer is, in numbers and pictures.

Reconstruction metrics and codebook statistics (``metrics``, ``audio_eval``),
classical baselines measured at the same bits (``baselines``), the demo's
report (``report``) and the plot helpers used in notebooks (``viz``; also
importable as ``modalities.viz``). It builds on ``data`` and the public
tokenizer modules, and imports nothing from ``training`` or ``tasks``.
"""
