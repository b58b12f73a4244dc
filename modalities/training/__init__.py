"""Training wing: the loops that fit mmtok's own tokenizers.

``trainer`` holds :class:`VQTrainer` (image and video VQ autoencoders:
optimiser, EMA, discriminator, validation, atomic resumable checkpoints) and
the device and learning-rate helpers the tasks share; ``audio_trainer`` adapts
it to log-mel spectrogram VQ. It builds on ``data`` and ``eval`` (validation
metrics); the tasks in ``modalities.tasks`` drive it.
"""
