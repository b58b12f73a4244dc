"""mmtok models: ``torch.nn.Module``s and their losses (VQ autoencoders, quantisers, the transformer).

No file loading and no Hydra here; ``modalities`` builds on this package, never the reverse.
"""
