"""Builders of the bundled sample set, one module per kind of data (see ``build_samples.py``)."""
