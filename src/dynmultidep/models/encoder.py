"""MT experts: per-modality encoders of pre-norm residual blocks.

An expert projects its modality's features to ``d_model`` (Linear +
LayerNorm), then applies ``num_layers`` blocks, each a token mixer (a
bidirectional Mamba by default, or local attention) followed by a
feed-forward sublayer, both as ``x + sublayer(norm(x))``. Padded steps are
zeroed after every block, so nothing computed there can leak anywhere.

With ``mtem`` the expert is the paper's Multi-scale Temporal Experts Module:
beside those blocks (the long-term branch) runs a second stack on the same
projected input whose mixers are local-window self-attention (the short-term
branch, a local-window Transformer), and a long-short router
(:mod:`dynmultidep.models.router`) weighs the two per sample::

    x0    = norm(Linear(x))                      (B, L, d_model)
    w     = router(masked mean/std of x0)        (B, 2)
    h     = w_long * long(x0) + w_short * short(x0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from dynmultidep.models.attention import LocalAttention
from dynmultidep.models.mamba import Mamba, tie_state_transition
from dynmultidep.models.masking import step_deltas, zero_padding
from dynmultidep.models.router import ROUTERS, LongShortRouter
from dynmultidep.ops.dropout import Dropout

ACTIVATIONS = {"gelu": nn.GELU, "swish": nn.SiLU, "silu": nn.SiLU, "relu": nn.ReLU}
MIXERS = ("mamba", "attention")
POOLINGS = ("mean", "stats", "attentive_stats")  # see models.pooling


@dataclass
class EncoderConfig:
    """Options of an MT expert; every model built on experts takes these as keyword arguments.

    These defaults are the project's: ``conf/model/_encoder.yaml`` mirrors them key for
    key (a test checks it). They are compact, so that a run on the synthetic corpus takes
    a minute or two on a CPU; the published recipes (``conf/experiment/_published.yaml``)
    pin the seed's values instead (``d_model`` 256, ``d_ffn`` 1024, ``expand`` 4, mean
    pooling, no input deltas or stochastic depth).
    """

    d_model: int = 64  # width of the residual stream
    num_layers: int = 1  # residual blocks
    mixers: Sequence[str] | None = None  # per block, "mamba" or "attention"; None: all mamba
    d_state: int = 12  # Mamba state size N
    d_conv: int = 4  # Mamba causal convolution width
    expand: int = 2  # Mamba inner width = expand * d_model
    bidirectional: bool = True  # add Mamba's backward branch (ignored when causal)
    causal: bool = False  # only look back in time: forward Mamba, causal attention
    d_ffn: int = 256  # hidden width of the feed-forward sublayer
    dropout: float = 0.1
    activation: str = "gelu"  # gelu | swish
    attention_heads: int = 4
    attention_window: int = 128  # steps each side an attention mixer sees
    scan_backend: str = "auto"  # selective-scan implementation (ops.scan)
    conv_backend: str = "auto"  # Mamba's causal convolution (ops.causal_conv)
    input_norm: bool = True  # LayerNorm after the input projection (removes each step's scale)
    output_norm: bool = True  # LayerNorm of the expert's output steps (the same, before pooling)
    input_deltas: bool = True  # also feed each step's change from the previous one
    zero_init_residual: bool = False  # residual branches start at zero: blocks begin as identity
    drop_path: float = 0.5  # stochastic depth: share of training samples that skip a branch
    pooling: str = "stats"  # over valid steps: mean | stats | attentive_stats (models.pooling)
    mtem: bool = False  # add the short-term branch (local-window attention) and the router
    router: str = "soft"  # long-short router with mtem: soft | hard | fixed (models.router)
    short_d_ffn: int | None = None  # FFN width of the short-term branch (None: d_ffn; 0: none)
    layer_mixers: list[str] = field(init=False)

    def __post_init__(self):
        mixers = list(self.mixers) if self.mixers is not None else ["mamba"] * self.num_layers
        if len(mixers) != self.num_layers:
            raise ValueError(f"mixers lists {len(mixers)} blocks but num_layers={self.num_layers}")
        unknown = sorted(set(mixers) - set(MIXERS))
        if unknown:
            raise ValueError(f"unknown mixer(s) {unknown}; use {' or '.join(MIXERS)}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; use one of {', '.join(POOLINGS)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; use gelu or swish")
        if self.router not in ROUTERS:
            raise ValueError(f"unknown router {self.router!r}; use one of {', '.join(ROUTERS)}")
        if self.short_d_ffn is not None and self.short_d_ffn < 0:
            raise ValueError(f"short_d_ffn must be >= 0 or None, got {self.short_d_ffn}")
        if not 0 <= self.drop_path < 1:
            raise ValueError(f"drop_path must lie in [0, 1), got {self.drop_path}")
        self.layer_mixers = mixers


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ffn: int, activation: str, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, d_ffn),
            ACTIVATIONS[activation](),
            Dropout(dropout),
            nn.Linear(d_ffn, d_model),
            Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ResidualBlock(nn.Module):
    """``x + mixer(norm(x))`` then ``x + ffn(norm(x))``; ``(B, L, d_model)`` in and out.

    ``d_ffn``: the FFN's hidden width (None: ``config.d_ffn``; 0: no FFN sublayer).
    """

    def __init__(self, mixer: nn.Module, config: EncoderConfig, d_ffn: int | None = None):
        super().__init__()
        d_ffn = config.d_ffn if d_ffn is None else d_ffn
        self.norm_mixer = nn.LayerNorm(config.d_model)
        self.mixer = mixer
        self.drop = Dropout(config.dropout)
        self.norm_ffn = self.ffn = None
        if d_ffn > 0:
            self.norm_ffn = nn.LayerNorm(config.d_model)
            self.ffn = FeedForward(config.d_model, d_ffn, config.activation, config.dropout)

        if config.zero_init_residual:
            added = [mixer.out_proj] + ([self.ffn.net[-2]] if self.ffn is not None else [])
            for last in added:  # what each branch adds
                nn.init.zeros_(last.weight)
                if last.bias is not None:
                    nn.init.zeros_(last.bias)

        self.drop_path = config.drop_path

    def _branch(self, y: Tensor) -> Tensor:
        """Stochastic depth: in training, a ``drop_path`` share of samples skips the branch."""
        if not self.training or self.drop_path == 0:
            return y
        keep = 1.0 - self.drop_path
        mask = torch.rand(y.shape[0], 1, 1, device=y.device) < keep
        return y * mask.to(y.dtype) / keep

    def forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        x = x + self._branch(self.drop(self.mixer(self.norm_mixer(x), lengths)))
        if self.ffn is not None:
            x = x + self._branch(self.ffn(self.norm_ffn(x)))
        return zero_padding(x, lengths)


def make_mixer(kind: str, config: EncoderConfig) -> nn.Module:
    if kind == "mamba":
        return Mamba(
            config.d_model,
            d_state=config.d_state,
            d_conv=config.d_conv,
            expand=config.expand,
            bidirectional=config.bidirectional and not config.causal,
            scan_backend=config.scan_backend,
            conv_backend=config.conv_backend,
        )
    return LocalAttention(
        config.d_model,
        num_heads=config.attention_heads,
        window=config.attention_window,
        causal=config.causal,
        dropout=config.dropout,
    )


class MTExpert(nn.Module):
    """Encoder of one modality: ``(B, L, in_dim), lengths (B,) -> (B, L, d_model)``.

    ``blocks`` is the long-term branch; with ``config.mtem``, ``short`` (the
    local-window Transformer) and ``router`` join it (see the module docstring).
    """

    def __init__(self, in_dim: int, config: EncoderConfig):
        super().__init__()
        norm = nn.LayerNorm(config.d_model) if config.input_norm else nn.Identity()
        self.deltas = config.input_deltas
        width = 2 * in_dim if self.deltas else in_dim
        self.input = nn.Sequential(nn.Linear(width, config.d_model), norm)
        self.blocks = nn.ModuleList(
            ResidualBlock(make_mixer(kind, config), config) for kind in config.layer_mixers
        )
        self.short = self.router = None
        if config.mtem:
            self.short = nn.ModuleList(
                ResidualBlock(make_mixer("attention", config), config, config.short_d_ffn)
                for _ in range(config.num_layers)
            )
            self.router = LongShortRouter(config.d_model, config.router)
        self.norm = nn.LayerNorm(config.d_model) if config.output_norm else nn.Identity()

    def forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        if self.deltas:
            x = torch.cat([x, step_deltas(x, lengths)], dim=-1)
        x = zero_padding(self.input(x), lengths)
        if self.router is None:
            x = run_blocks(self.blocks, x, lengths)
        else:
            if lengths is None:
                lengths = torch.full((x.shape[0],), x.shape[1], device=x.device)
            x = self._long_short(x, lengths)
        return zero_padding(self.norm(x), lengths)

    def _long_short(self, x: Tensor, lengths: Tensor) -> Tensor:
        weights = self.router(x, lengths)  # (B, 2)
        if self.router.skips():
            return self._chosen_branch_only(x, lengths, weights)
        long, short = (run_blocks(b, x, lengths) for b in (self.blocks, self.short))
        return weights[:, 0, None, None] * long + weights[:, 1, None, None] * short

    def _chosen_branch_only(self, x: Tensor, lengths: Tensor, weights: Tensor) -> Tensor:
        """Each sample runs the branch its hard router chose, and nothing else."""
        choice = weights.argmax(-1)
        out = torch.zeros_like(x)
        for b, branch in enumerate((self.blocks, self.short)):
            rows = torch.nonzero(choice == b).flatten()
            if rows.numel() == 0:
                continue
            steps = int(lengths[rows].max())  # the group needs no padding beyond its longest
            h = run_blocks(branch, x[rows, :steps], lengths[rows])
            out[rows, :steps] = (weights[rows, b, None, None] * h).to(out.dtype)
        return out


def run_blocks(blocks: nn.ModuleList, x: Tensor, lengths: Tensor | None) -> Tensor:
    """Residual blocks in turn: ``(B, L, d_model) -> (B, L, d_model)``."""
    for block in blocks:
        x = block(x, lengths)
    return x


def share_state_transitions(source: MTExpert, target: MTExpert) -> int:
    """Tie ``target``'s Mamba ``A`` to ``source``'s, block by block (where both
    blocks are Mamba). Returns the number of blocks tied."""
    tied = 0
    for a, b in zip(source.blocks, target.blocks, strict=True):
        if isinstance(a.mixer, Mamba) and isinstance(b.mixer, Mamba):
            tie_state_transition(a.mixer, b.mixer)
            tied += 1
    return tied
