"""Baselines with DynMultiDep's constructor style and output contract.

* :class:`TemporalMean`: masked time-average of the raw features, then an MLP.
* :class:`Unimodal`: one MT expert (``modality="audio"`` or ``"video"``).
* :class:`ConcatFusion`: both experts, pooled vectors concatenated (static fusion).
* :class:`LateFusion`: one classifier per expert, logits averaged.

DynMultiDep without cross-modal sharing is ``DynMultiDep(share_ssm=False)``.
Encoder keyword arguments are those of :class:`EncoderConfig`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dynmultidep.models.encoder import EncoderConfig
from dynmultidep.models.experts import MODALITIES, ModalityExperts, classifier_head
from dynmultidep.models.masking import masked_mean
from dynmultidep.models.output import ModelOutput


class TemporalMean(nn.Module):
    """``[mean_t audio, mean_t video]`` -> MLP -> logit; no temporal modelling."""

    def __init__(self, audio_dim: int, video_dim: int, d_model: int = 256, dropout: float = 0.1):
        super().__init__()
        self.classifier = classifier_head(audio_dim + video_dim, d_model, dropout)

    def forward(self, audio: Tensor, video: Tensor, lengths: Tensor) -> ModelOutput:
        pooled = torch.cat([masked_mean(audio, lengths), masked_mean(video, lengths)], dim=-1)
        return ModelOutput(self.classifier(pooled).squeeze(-1), None, audio.new_zeros(()))


class _ExpertModel(nn.Module):
    """Experts for ``modalities`` plus the encoder options every subclass takes."""

    def __init__(self, audio_dim, video_dim, modalities, share_ssm=False, **encoder):
        super().__init__()
        config = EncoderConfig(**encoder)
        self.encoders = ModalityExperts(audio_dim, video_dim, modalities, share_ssm, config)
        self.d_model, self.dropout = config.d_model, config.dropout
        self.pooled_dim = self.encoders.pooled_dim

    def pooled(self, audio: Tensor, video: Tensor, lengths: Tensor) -> list[Tensor]:
        inputs = {"audio": audio, "video": video}
        return [self.encoders.pooled(m, inputs[m], lengths) for m in self.encoders.experts]


class Unimodal(_ExpertModel):
    """One modality's MT expert -> pooled over its valid steps (``pooling``) -> MLP -> logit."""

    def __init__(self, audio_dim: int, video_dim: int, modality: str = "audio", **encoder):
        if modality not in MODALITIES:
            raise ValueError(f"modality must be audio or video, got {modality!r}")
        super().__init__(audio_dim, video_dim, (modality,), **encoder)
        self.classifier = classifier_head(self.pooled_dim, self.d_model, self.dropout)

    def forward(self, audio: Tensor, video: Tensor, lengths: Tensor) -> ModelOutput:
        (pooled,) = self.pooled(audio, video, lengths)
        return ModelOutput(self.classifier(pooled).squeeze(-1), None, audio.new_zeros(()))


class ConcatFusion(_ExpertModel):
    """Both experts -> ``[r_audio, r_video]`` -> MLP -> logit."""

    def __init__(self, audio_dim: int, video_dim: int, share_ssm: bool = False, **encoder):
        super().__init__(audio_dim, video_dim, MODALITIES, share_ssm, **encoder)
        self.classifier = classifier_head(2 * self.pooled_dim, self.d_model, self.dropout)

    def forward(self, audio: Tensor, video: Tensor, lengths: Tensor) -> ModelOutput:
        pooled = torch.cat(self.pooled(audio, video, lengths), dim=-1)
        return ModelOutput(self.classifier(pooled).squeeze(-1), None, audio.new_zeros(()))


class LateFusion(_ExpertModel):
    """Each expert has its own classifier; the logit is their mean."""

    def __init__(self, audio_dim: int, video_dim: int, share_ssm: bool = False, **encoder):
        super().__init__(audio_dim, video_dim, MODALITIES, share_ssm, **encoder)
        self.classifiers = nn.ModuleList(
            classifier_head(self.pooled_dim, self.d_model, self.dropout) for _ in MODALITIES
        )

    def forward(self, audio: Tensor, video: Tensor, lengths: Tensor) -> ModelOutput:
        logits = [
            head(r).squeeze(-1)
            for head, r in zip(self.classifiers, self.pooled(audio, video, lengths), strict=True)
        ]
        return ModelOutput(torch.stack(logits).mean(0), None, audio.new_zeros(()))
