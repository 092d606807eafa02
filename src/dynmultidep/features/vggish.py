"""VGGish, LMVD's audio embedding, in PyTorch with torchvggish's state-dict layout.

LMVD's audio features are VGGish embeddings: one 128-d row per 0.96 s of audio
(Hershey et al., "CNN Architectures for Large-Scale Audio Classification",
ICASSP 2017). The network is a small VGG over a ``(96, 64)`` log-mel patch
(:mod:`.mel`); its weights are Google's, ported to PyTorch by torchvggish.

No weights are shipped and nothing is downloaded: the user supplies torchvggish's
``vggish-10086976.pth`` (and, for AudioSet-style post-processing, its
``vggish_pca_params-970ea276.pth`` or AudioSet's ``vggish_pca_params.npz``), and
:func:`load_vggish` reads them with ``weights_only`` unpickling.

Layout (torchvggish ``VGG``), indices as in the state dict:

- ``features``: conv 0 (1->64), pool 2, conv 3 (64->128), pool 5, conv 6
  (128->256), conv 8 (256->256), pool 10, conv 11 (256->512), conv 13
  (512->512), pool 15; 3x3 convolutions with padding 1, each followed by ReLU,
  2x2 max-pools: ``(N, 1, 96, 64) -> (N, 512, 6, 4)``.
- flatten in TensorFlow's NHWC order, ``(N, 6, 4, 512) -> (N, 12288)``, as the
  fully connected weights were trained on it.
- ``embeddings``: linear 0 (12288->4096), 2 (4096->4096), 4 (4096->128), each
  followed by ReLU (the last one too, as in torchvggish).
- ``pproc`` (optional): AudioSet's PCA whitening, clipping to [-2, 2] and 8-bit
  quantisation, ``pca_eigen_vectors (128, 128)``, ``pca_means (128, 1)``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dynmultidep.errors import DataError
from dynmultidep.features.mel import (
    VGGISH_LOG_MEL,
    LogMelSettings,
    check_sample_rate,
    example_span,
    log_mel,
    log_mel_examples,
    num_examples,
    to_mono,
)

__all__ = [
    "EMBEDDING_SIZE",
    "Postprocessor",
    "VGGish",
    "load_vggish",
    "log_mel_examples",
    "vggish_embeddings",
]

EMBEDDING_SIZE = 128
QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0  # AudioSet clips PCA'd embeddings to this range
_CONV_CHANNELS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")  # "M": 2x2 max-pool
_MISSING_HINT = (
    "VGGish weights are not shipped with this project and are never downloaded; "
    "supply torchvggish's vggish-10086976.pth with --vggish-checkpoint FILE"
)


def _features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 1
    for v in _CONV_CHANNELS:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = v
    return nn.Sequential(*layers)


class Postprocessor(nn.Module):
    """AudioSet's release transform: PCA whitening, clip to [-2, 2], 8-bit quantise.

    Buffers as torchvggish names them: ``pca_eigen_vectors (128, 128)`` (rows are
    output dimensions) and ``pca_means (128, 1)``.
    """

    def __init__(self, pca_eigen_vectors: torch.Tensor, pca_means: torch.Tensor):
        super().__init__()
        ev = torch.as_tensor(pca_eigen_vectors, dtype=torch.float32)
        means = torch.as_tensor(pca_means, dtype=torch.float32).reshape(-1, 1)
        if ev.shape != (EMBEDDING_SIZE, EMBEDDING_SIZE) or means.shape != (EMBEDDING_SIZE, 1):
            raise ValueError(
                f"PCA parameters must be (128, 128) and (128,) or (128, 1), "
                f"got {tuple(ev.shape)} and {tuple(torch.as_tensor(pca_means).shape)}"
            )
        self.register_buffer("pca_eigen_vectors", ev)
        self.register_buffer("pca_means", means)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``(N, 128)`` raw embeddings -> ``(N, 128)`` float holding integers 0..255."""
        whitened = (embeddings - self.pca_means.T) @ self.pca_eigen_vectors.T
        clipped = whitened.clamp(QUANTIZE_MIN, QUANTIZE_MAX)
        return torch.round((clipped - QUANTIZE_MIN) * (255.0 / (QUANTIZE_MAX - QUANTIZE_MIN)))


class VGGish(nn.Module):
    """VGGish ``(N, 1, 96, 64)`` or ``(N, 96, 64)`` log-mel examples -> ``(N, 128)``.

    With ``pproc`` the output is AudioSet's post-processed embedding (values
    0..255); without it, the raw embedding after the final ReLU.
    """

    def __init__(self, pproc: Postprocessor | None = None):
        super().__init__()
        self.features = _features()
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 6 * 4, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, EMBEDDING_SIZE),
            nn.ReLU(inplace=True),
        )
        self.pproc = pproc

    @property
    def postprocess(self) -> bool:
        return self.pproc is not None

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        if examples.dim() == 3:
            examples = examples[:, None]  # (N, 96, 64) -> (N, 1, 96, 64)
        x = self.features(examples)  # (N, 512, 6, 4)
        x = x.permute(0, 2, 3, 1).flatten(1)  # NHWC: (N, 6 * 4 * 512)
        x = self.embeddings(x)  # (N, 128)
        return self.pproc(x) if self.pproc is not None else x


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in VGGish().state_dict().items()}


def _numpy_safe_globals() -> list:
    """Globals a pickled float ndarray needs: torchvggish's PCA file holds numpy arrays.

    ``_reconstruct`` only allocates an array; its data then comes as raw bytes
    (object arrays would need further globals, which stay refused).
    """
    reconstruct = np.zeros(1).__reduce__()[0]
    names = ["numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"]
    dtypes = [np.float16, np.float32, np.float64, np.int32, np.int64]
    return (
        [(reconstruct, n) for n in names]
        + [np.ndarray, np.dtype]
        + [type(np.dtype(t)) for t in dtypes]
    )


def _load_problem(err: Exception) -> str:
    """The informative part of a ``torch.load`` error, on one short line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    if "WeightsUnpickler error:" in text:  # skip torch's advice on weights_only=False
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation")[0]
        text = text.split(" Please use `torch.serialization")[0]
    text = " ".join(text.split())
    return text[:200] or type(err).__name__


def _read(path: Path, what: str, allow_numpy: bool = False) -> object:
    if not path.is_file():
        hint = f"; {_MISSING_HINT}" if what == "weights" else ""
        raise DataError(path, f"VGGish {what} file not found{hint}")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except Exception as err:
            raise DataError(path, f"not a readable .npz file ({err})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. about the pickle protocol
            if allow_numpy and hasattr(torch.serialization, "safe_globals"):
                with torch.serialization.safe_globals(_numpy_safe_globals()):
                    return torch.load(path, map_location="cpu", weights_only=True)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise DataError(
            path,
            f"not a PyTorch checkpoint that weights_only loading accepts ({_load_problem(err)})",
        ) from None


def _state_dict(path: Path, loaded: object) -> dict[str, torch.Tensor]:
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(isinstance(k, str) for k in loaded):
        raise DataError(path, f"expected a state dict of tensors, got {type(loaded).__name__}")
    state = dict(loaded)
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _few(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _check_layout(path: Path, state: dict[str, object]) -> None:
    expected = _expected_shapes()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    problems = []
    if missing:
        problems.append(f"missing {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected {_few(unexpected)}")
    not_tensors = [k for k in expected if k in state and not torch.is_tensor(state[k])]
    if not_tensors:
        problems.append(f"not tensors: {_few(not_tensors)}")
    wrong = [
        f"{k} {tuple(state[k].shape)} (want {shape})"
        for k, shape in expected.items()
        if k in state and torch.is_tensor(state[k]) and tuple(state[k].shape) != shape
    ]
    if wrong:
        problems.append(f"wrong shapes {_few(wrong)}")
    if problems:
        raise DataError(path, "not a torchvggish VGGish state dict: " + "; ".join(problems))


def _pca_from(path: Path, params: Mapping) -> Postprocessor:
    keys = ("pca_eigen_vectors", "pca_means")
    missing = [k for k in keys if k not in params]
    if missing:
        raise DataError(path, f"no VGGish PCA parameters: missing {', '.join(missing)}")
    try:
        return Postprocessor(*(torch.as_tensor(np.asarray(params[k])) for k in keys))
    except (TypeError, ValueError, RuntimeError) as err:
        raise DataError(path, f"bad VGGish PCA parameters ({err})") from None


def load_vggish(
    path: str | Path, pca_path: str | Path | None = None, postprocess: bool = False
) -> VGGish:
    """VGGish in eval mode on CPU with the weights of a torchvggish checkpoint.

    ``path`` is a ``torch.save``'d state dict with torchvggish's keys
    (``features.{0,3,6,8,11,13}.*``, ``embeddings.{0,2,4}.*``), as
    ``vggish-10086976.pth`` is; a dict holding it under ``"state_dict"`` and
    ``module.`` prefixes (DataParallel) are accepted too. It is read with
    ``weights_only=True``. With ``postprocess=True`` the model applies AudioSet's
    PCA + quantisation; the PCA parameters (``pca_eigen_vectors``, ``pca_means``)
    come from ``pca_path`` (torchvggish's ``vggish_pca_params-970ea276.pth``,
    whose numpy arrays are allowed through, or AudioSet's
    ``vggish_pca_params.npz``), or else from ``pproc.*`` keys in ``path`` (a saved
    torchvggish model with post-processing). ``pca_path`` is read only when
    ``postprocess`` is set. Every problem raises a one-line :class:`DataError`.
    """
    path = Path(path)
    state = _state_dict(path, _read(path, "weights"))
    pproc_state = {k[len("pproc.") :]: state.pop(k) for k in list(state) if k.startswith("pproc.")}
    _check_layout(path, state)
    pproc = None
    if postprocess:
        if pca_path is not None:
            pca_path = Path(pca_path)
            params = _read(pca_path, "PCA parameters", allow_numpy=True)
            if not isinstance(params, Mapping):
                raise DataError(pca_path, f"expected a dict of arrays, got {type(params).__name__}")
            pproc = _pca_from(pca_path, params)
        elif pproc_state:
            pproc = _pca_from(path, pproc_state)
        else:
            raise DataError(
                path,
                "postprocessing needs VGGish's PCA parameters and this checkpoint has none; "
                "supply torchvggish's vggish_pca_params-970ea276.pth (or AudioSet's "
                "vggish_pca_params.npz) as pca_path",
            )
    with torch.device("meta"):  # no random init for the checkpoint to overwrite
        model = VGGish()
    state = {k: v.to(torch.float32).contiguous() for k, v in state.items()}
    try:
        model.load_state_dict(state, assign=True)
    except RuntimeError as err:
        problem = str(err).strip().splitlines()[0]
        raise DataError(path, f"could not load the VGGish weights ({problem})") from None
    model.pproc = pproc
    return model.eval()


def vggish_embeddings(
    model: VGGish,
    waveform: np.ndarray | torch.Tensor,
    sample_rate: int,
    batch_size: int = 64,
    settings: LogMelSettings = VGGISH_LOG_MEL,
) -> np.ndarray:
    """VGGish embeddings ``(N, 128)`` float32 of ``(S,)`` or ``(C, S)`` audio.

    One row per complete 0.96 s example, ``N`` as in :func:`log_mel_examples`
    (0 for audio under 0.975 s, giving a ``(0, 128)`` array). Runs under
    ``torch.inference_mode`` on the model's device, ``batch_size`` examples at a
    time: the log-mel of each batch is computed from its own stretch of the
    waveform, so memory beyond the waveform itself stays bounded on hour-long
    audio. Post-processed models give integers 0..255 stored as float32.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    check_sample_rate(sample_rate, settings)
    x = to_mono(waveform)
    hop, length = example_span(settings)
    device = next(model.parameters()).device
    n = num_examples(x.shape[0], settings)
    out = []
    with torch.inference_mode():
        for e0 in range(0, n, batch_size):
            e1 = min(n, e0 + batch_size)
            spec = log_mel(x[e0 * hop : (e1 - 1) * hop + length], settings)  # (F, 64)
            batch = spec[: (e1 - e0) * settings.example_frames].reshape(
                e1 - e0, 1, settings.example_frames, settings.num_mel_bins
            )
            out.append(model(batch.float().to(device)).float().cpu())
    if not out:
        return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
    return torch.cat(out).numpy().astype(np.float32, copy=False)
