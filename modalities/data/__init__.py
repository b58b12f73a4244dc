"""Data wing: everything that reads media and corpora into tensors.

File and tensor input (``io``: images, video, audio files; ``waveform``:
resampling and channel handling; ``sizing``: size policies), atomic writes and
JSON reading (``fileio``), training datasets and file-level splits
(``datasets``), the bundled samples (``samples``) and the run's metrics log
(``runlog``). It imports no other wing of ``modalities``: training,
evaluation and the tokenizers build on it, never the other way round.
"""
