"""What a downstream Hugging Face language model needs from mmtok.

* :func:`extend_model`: grow a pretrained causal LM's embeddings to a registry laid on its own tokenizer
  (``TextTokenizer.from_hf``), old rows bit-identical;
* :class:`PackedShards` and :class:`PackedCollator`: packed training sequences from pre-tokenised shards for
  ``transformers.Trainer``, positions restarting per document, labels masked by modality on request;
* :class:`StreamLogitsProcessor` and :class:`SegmentEndCriteria`: ``model.generate`` that follows the stream
  grammar, so every generated media segment decodes at the requested shape; :func:`text_to_image` and
  :func:`text_to_speech` on top;
* :func:`make_tiny_lm`: a tiny random local model folder for tests and examples.

The ``task=lm_hf`` training loop (:mod:`modalities.tasks.lm_hf`) is built from these. The tokenizers never
import this package.
"""

from .extend import INIT_RULES, ExtendReport, extend_model
from .logits import SegmentEndCriteria, StreamLogitsProcessor
from .packed import IGNORE, PackedCollator, PackedShards, packed_loss
from .sample import generate_media, text_to_image, text_to_speech
from .tiny import make_tiny_lm

__all__ = ["IGNORE", "INIT_RULES", "ExtendReport", "PackedCollator", "PackedShards", "SegmentEndCriteria",
           "StreamLogitsProcessor", "extend_model", "generate_media", "make_tiny_lm", "packed_loss",
           "text_to_image", "text_to_speech"]
