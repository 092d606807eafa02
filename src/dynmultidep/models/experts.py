"""The pieces models share: one MT expert per modality, pooling, classifier heads."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from dynmultidep.models.encoder import EncoderConfig, MTExpert, share_state_transitions
from dynmultidep.models.pooling import make_pooling
from dynmultidep.ops.dropout import Dropout

MODALITIES = ("audio", "video")


class ModalityExperts(nn.Module):
    """One :class:`MTExpert` per modality, pooled over valid steps (``config.pooling``;
    ``pooled_dim`` is the pooled width).

    With ``share_ssm`` and both modalities, the Mamba blocks of the video
    expert use the audio expert's state transition ``A`` (one parameter).
    """

    def __init__(
        self,
        audio_dim: int,
        video_dim: int,
        modalities: Sequence[str] = MODALITIES,
        share_ssm: bool = False,
        config: EncoderConfig | None = None,
    ):
        super().__init__()
        unknown = sorted(set(modalities) - set(MODALITIES))
        if unknown or not modalities:
            raise ValueError(f"modalities must be drawn from {MODALITIES}, got {list(modalities)}")
        self.config = config or EncoderConfig()
        dims = {"audio": audio_dim, "video": video_dim}
        self.experts = nn.ModuleDict({m: MTExpert(dims[m], self.config) for m in modalities})
        self.pools = nn.ModuleDict(
            {m: make_pooling(self.config.pooling, self.config.d_model) for m in modalities}
        )
        self.pooled_dim = self.pools[modalities[0]].out_dim
        self.shared_blocks = 0
        if share_ssm and len(self.experts) == 2:
            self.shared_blocks = share_state_transitions(
                self.experts["audio"], self.experts["video"]
            )

    def encode(self, modality: str, x: Tensor, lengths: Tensor) -> Tensor:
        """``x: (B, L, D_modality)`` -> step encodings ``(B, L, d_model)``."""
        return self.experts[modality](x, lengths)

    def pool(self, modality: str, h: Tensor, lengths: Tensor) -> Tensor:
        """Step encodings ``h: (B, L, d_model)`` -> ``(B, pooled_dim)``."""
        return self.pools[modality](h, lengths)

    def pooled(self, modality: str, x: Tensor, lengths: Tensor) -> Tensor:
        """``x: (B, L, D_modality)`` -> ``(B, pooled_dim)`` pooled over valid steps."""
        return self.pool(modality, self.encode(modality, x, lengths), lengths)

    def compute_cost(self, modality: str) -> int:
        """Parameters the expert applies at every step (a proxy for its compute)."""
        return sum(p.numel() for p in self.experts[modality].parameters())


def classifier_head(in_dim: int, hidden: int, dropout: float) -> nn.Sequential:
    """MLP ``(B, in_dim) -> (B, 1)``."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.GELU(), Dropout(dropout), nn.Linear(hidden, 1)
    )
