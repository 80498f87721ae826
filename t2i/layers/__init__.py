"""alignDRAW's Keras layers (backend-agnostic: keras.ops and keras.random only)."""

from t2i.layers.alignment import CaptionAlignment
from t2i.layers.caption_encoder import CaptionEncoder
from t2i.layers.draw_attention import DrawReadAttention, DrawWriteAttention
from t2i.layers.gaussian import LearnedPrior, PosteriorHead
from t2i.layers.lstm_cell import LSTMCell

__all__ = ["CaptionAlignment", "CaptionEncoder", "DrawReadAttention", "DrawWriteAttention",
           "LearnedPrior", "PosteriorHead", "LSTMCell"]
