"""VGGish: AudioSet's log-mel front end, torchvggish's layout, checkpoints the user supplies."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dynmultidep.errors import DataError
from dynmultidep.features.mel import (
    log_mel_examples,
    mel_filterbank,
    num_examples,
    to_mono,
)
from dynmultidep.features.vggish import Postprocessor, VGGish, load_vggish, vggish_embeddings

# torchvggish's VGG (torchvggish/vggish.py: make_layers() and VGG.embeddings), as
# its state_dict() lists them: ReLUs and max-pools hold the other indices.
TORCHVGGISH_LAYOUT = [
    ("features.0.weight", (64, 1, 3, 3)),
    ("features.0.bias", (64,)),
    ("features.3.weight", (128, 64, 3, 3)),
    ("features.3.bias", (128,)),
    ("features.6.weight", (256, 128, 3, 3)),
    ("features.6.bias", (256,)),
    ("features.8.weight", (256, 256, 3, 3)),
    ("features.8.bias", (256,)),
    ("features.11.weight", (512, 256, 3, 3)),
    ("features.11.bias", (512,)),
    ("features.13.weight", (512, 512, 3, 3)),
    ("features.13.bias", (512,)),
    ("embeddings.0.weight", (4096, 512 * 4 * 6)),
    ("embeddings.0.bias", (4096,)),
    ("embeddings.2.weight", (4096, 4096)),
    ("embeddings.2.bias", (4096,)),
    ("embeddings.4.weight", (128, 4096)),
    ("embeddings.4.bias", (128,)),
]


def tone(hz: float, seconds: float, rate: int = 16000) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * hz * np.arange(round(seconds * rate)) / rate)


def constant_state(**overrides) -> dict[str, torch.Tensor]:
    """A full-size state dict stored in a few bytes: each tensor a stride-0 view."""
    state = {k: torch.full((1,), 1e-3).expand(shape) for k, shape in TORCHVGGISH_LAYOUT}
    state.update(overrides)
    return state


def check(err: pytest.ExceptionInfo, path: Path, *words: str) -> None:
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    for word in words:
        assert word in message, message


@pytest.fixture(scope="module")
def model() -> VGGish:
    torch.manual_seed(0)
    return VGGish().eval()


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vggish") / "vggish-random.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def pca() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "pca_eigen_vectors": rng.normal(0, 0.3, size=(128, 128)),
        "pca_means": rng.normal(0, 0.01, size=128),
    }


# ---- front end ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        (0, 0),
        (399, 0),
        (8000, 0),  # 0.5 s
        (15360, 0),  # exactly 0.96 s: 94 frames, as in AudioSet's vggish_input
        (15599, 0),
        (15600, 1),  # 400 + 95 * 160: the first complete example
        (31200, 2),
        (160000, 10),  # 10 s
    ],
)
def test_example_counts(samples, expected):
    examples = log_mel_examples(np.zeros(samples), 16000)
    assert examples.shape == (expected, 96, 64)
    assert examples.dtype == torch.float32
    assert num_examples(samples) == expected


def test_silence_is_log_offset():
    assert torch.allclose(log_mel_examples(np.zeros(16000), 16000), torch.tensor(math.log(0.01)))


def test_mel_filterbank_is_htk_triangles():
    weights = mel_filterbank()
    assert weights.shape == (257, 64)
    assert np.all(weights[0] == 0)  # HTK leaves out the DC bin

    def mel(hz):
        return 2595.0 * math.log10(1.0 + hz / 700.0)  # HTK's formula, base-10 form

    lo, hi = mel(125.0), mel(7500.0)
    edges = [lo + i * (hi - lo) / 65 for i in range(66)]
    for band in (0, 1, 20, 42, 63):
        left, centre, right = edges[band : band + 3]
        for k in range(1, 257):
            m = mel(k * 8000.0 / 256)
            if left < m <= centre:
                want = (m - left) / (centre - left)
            elif centre < m < right:
                want = (right - m) / (right - centre)
            else:
                want = 0.0
            assert weights[k, band] == pytest.approx(want, abs=1e-9), (band, k)


@pytest.mark.parametrize("hz", [300.0, 1000.0, 3000.0, 6000.0])
def test_pure_tone_lands_in_its_band(hz):
    edges = np.linspace(1127 * math.log1p(125 / 700), 1127 * math.log1p(7500 / 700), 66)
    centres_hz = 700 * (np.exp(edges[1:-1] / 1127) - 1)
    energy = log_mel_examples(tone(hz, 2.0), 16000).mean(dim=(0, 1)).numpy()  # (64,)
    assert energy.argmax() == np.abs(centres_hz - hz).argmin()
    assert energy.max() > np.median(energy) + 5  # far above the leakage elsewhere


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_other_sample_rates_are_refused_with_what_to_do(rate):
    # FFmpeg decodes at 16 kHz in the pipeline; the front end never resamples
    for call in (lambda: log_mel_examples(tone(1000.0, 1.0, rate), rate),
                 lambda: vggish_embeddings(VGGish(), tone(1000.0, 1.0, rate), rate)):  # fmt: skip
        with pytest.raises(ValueError, match=f"takes 16000 Hz audio, got {rate} Hz"):
            call()


def test_channels_averaged_and_integers_scaled():
    left, right = tone(500.0, 1.0), tone(2000.0, 1.0)
    stereo = log_mel_examples(np.stack([left, right]), 16000)
    assert torch.equal(stereo, log_mel_examples((left + right) / 2, 16000))
    pcm = (left * 32767).astype(np.int16)
    assert torch.allclose(to_mono(pcm), torch.from_numpy(pcm / 32768.0))
    with pytest.raises(ValueError, match="shape"):
        to_mono(np.zeros((1, 2, 3)))


# ---- network ------------------------------------------------------------------


def test_state_dict_is_torchvggish_layout():
    with torch.device("meta"):
        layout = [(k, tuple(v.shape)) for k, v in VGGish().state_dict().items()]
    assert layout == TORCHVGGISH_LAYOUT


def test_flatten_order_is_torchvggish(model):
    x = torch.randn(1, 1, 96, 64)
    with torch.inference_mode():
        features = model.features(x)  # (1, 512, 6, 4)
        # torchvggish's VGG.forward, literally: NCHW -> NWHC -> NHWC, then flatten.
        nhwc = torch.transpose(torch.transpose(features, 1, 3), 1, 2).contiguous()
        want = model.embeddings(nhwc.view(1, -1))
        assert torch.allclose(model(x[:, 0]), want)  # (N, 96, 64) input: channel added
    assert want.shape == (1, 128)


def test_checkpoint_round_trip(model, checkpoint):
    loaded = load_vggish(checkpoint)
    assert not loaded.training and not loaded.postprocess
    x = torch.randn(2, 1, 96, 64)
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))


def test_wrapped_and_prefixed_state_dicts(tmp_path):
    state = constant_state()
    for name, saved in [
        ("wrapped.pth", {"state_dict": state, "epoch": 3}),
        ("parallel.pth", {f"module.{k}": v for k, v in state.items()}),
    ]:
        torch.save(saved, tmp_path / name)
        loaded = load_vggish(tmp_path / name)
        assert torch.all(loaded.embeddings[4].bias == 1e-3)


def test_embeddings_of_a_waveform(model):
    rng = np.random.default_rng(0)
    audio = rng.uniform(-0.5, 0.5, 2 * 16000).astype(np.float32)
    rows = vggish_embeddings(model, audio, 16000, batch_size=1)  # one example per batch
    assert rows.shape == (2, 128) and rows.dtype == np.float32
    with torch.inference_mode():
        whole = model(log_mel_examples(audio, 16000)).numpy()
    np.testing.assert_allclose(rows, whole, rtol=1e-5, atol=1e-6)
    assert vggish_embeddings(model, audio[:8000], 16000).shape == (0, 128)


# ---- checkpoint errors --------------------------------------------------------


def test_missing_checkpoint(tmp_path):
    path = tmp_path / "vggish-10086976.pth"
    with pytest.raises(DataError) as err:
        load_vggish(path)
    check(err, path, "not shipped", "--vggish-checkpoint", "vggish-10086976.pth")


def test_garbage_checkpoint(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(DataError) as err:
        load_vggish(path)
    check(err, path, "not a PyTorch checkpoint")


def test_checkpoint_with_python_objects_is_refused(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"features.0.weight": torch.zeros(1), "config": Path("x")}, path)
    with pytest.raises(DataError) as err:  # weights_only: never unpickle arbitrary objects
        load_vggish(path)
    check(err, path, "not a PyTorch checkpoint", "Unsupported global")


def test_wrong_keys(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(
        {"encoder.weight": torch.zeros(3), "features.0.weight": torch.zeros(64, 1, 3, 3)}, path
    )
    with pytest.raises(DataError) as err:
        load_vggish(path)
    check(err, path, "missing features.0.bias, features.3.weight", "more", "unexpected encoder")


def test_wrong_shape(tmp_path):
    path = tmp_path / "narrow.pth"
    torch.save(constant_state(**{"embeddings.4.weight": torch.zeros(64, 4096)}), path)
    with pytest.raises(DataError) as err:
        load_vggish(path)
    check(err, path, "embeddings.4.weight (64, 4096) (want (128, 4096))")


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(DataError) as err:
        load_vggish(path)
    check(err, path, "expected a state dict")


# ---- post-processing ----------------------------------------------------------


def test_postprocessor_is_audioset_formula(pca):
    pproc = Postprocessor(*(torch.from_numpy(pca[k]) for k in ("pca_eigen_vectors", "pca_means")))
    raw = np.random.default_rng(1).uniform(0, 3, size=(5, 128))
    want = np.round(
        (np.clip(pca["pca_eigen_vectors"] @ (raw.T - pca["pca_means"][:, None]), -2, 2).T + 2)
        * 255
        / 4
    )
    got = pproc(torch.from_numpy(raw).float()).numpy()
    assert np.abs(got - want).max() <= 1  # float32 rounding may move a value across .5


def test_postprocess_with_torchvggish_pca_file(model, checkpoint, pca, tmp_path):
    pca_path = tmp_path / "vggish_pca_params-970ea276.pth"
    torch.save(pca, pca_path)  # numpy arrays, as torchvggish's release holds them
    processed = load_vggish(checkpoint, pca_path=pca_path, postprocess=True)
    assert processed.postprocess
    rows = vggish_embeddings(processed, tone(1000.0, 2.0), 16000)
    assert rows.shape == (2, 128) and rows.dtype == np.float32
    assert rows.min() >= 0 and rows.max() <= 255 and np.all(rows == np.round(rows))
    assert len(np.unique(rows)) > 10
    # The release was pickled by numpy 1.x, whose arrays name numpy.core, not numpy._core.
    old_numpy = tmp_path / "pca_numpy1.pth"
    with zipfile.ZipFile(pca_path) as saved, zipfile.ZipFile(old_numpy, "w") as out:
        for name in saved.namelist():
            data = saved.read(name)
            out.writestr(name, data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    same = load_vggish(checkpoint, pca_path=old_numpy, postprocess=True)
    again = vggish_embeddings(same, tone(1000.0, 2.0), 16000)
    assert np.array_equal(again, rows)


def test_postprocess_with_audioset_npz_and_pproc_keys(pca, tmp_path):
    npz = tmp_path / "vggish_pca_params.npz"
    np.savez(npz, **pca)
    ckpt = tmp_path / "small.pth"
    torch.save(constant_state(), ckpt)
    from_npz = load_vggish(ckpt, pca_path=npz, postprocess=True)
    full = tmp_path / "with_pproc.pth"  # a torchvggish model saved with its Postprocessor
    torch.save(
        constant_state(**{f"pproc.{k}": torch.as_tensor(v).float() for k, v in pca.items()}), full
    )
    from_keys = load_vggish(full, postprocess=True)
    assert not load_vggish(full).postprocess  # off unless asked for
    x = torch.randn(2, 96, 64)
    with torch.inference_mode():
        assert torch.equal(from_npz(x), from_keys(x))


def test_postprocess_needs_pca(tmp_path, pca):
    ckpt = tmp_path / "small.pth"
    torch.save(constant_state(), ckpt)
    with pytest.raises(DataError) as err:
        load_vggish(ckpt, postprocess=True)
    check(err, ckpt, "PCA parameters", "pca_path", "vggish_pca_params")
    missing = tmp_path / "vggish_pca_params.npz"
    with pytest.raises(DataError) as err:
        load_vggish(ckpt, pca_path=missing, postprocess=True)
    check(err, missing, "not found")
    partial = tmp_path / "partial.pth"
    torch.save({"pca_means": pca["pca_means"]}, partial)
    with pytest.raises(DataError) as err:
        load_vggish(ckpt, pca_path=partial, postprocess=True)
    check(err, partial, "missing pca_eigen_vectors")
