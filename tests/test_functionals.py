"""The functionals baseline: its statistics, its model, and training it through train.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import QUIET, compose_config
from dynmultidep.models.functionals import Functionals, functionals, masked_percentiles


def padded(sequences, width, garbage=1e3):
    """``(B, L, D)`` with garbage after each sequence, and ``lengths``."""
    steps = max(len(s) for s in sequences)
    x = torch.full((len(sequences), steps, width), garbage)
    for i, s in enumerate(sequences):
        x[i, : len(s)] = torch.as_tensor(s, dtype=torch.float32)
    return x, torch.tensor([len(s) for s in sequences])


def test_functionals_are_the_statistics_of_the_valid_steps():
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(n, 3)).astype(np.float32) for n in (9, 4, 1)]
    x, lengths = padded(seqs, 3)
    out = functionals(x, lengths, (10, 50, 90)).numpy()
    for row, s in zip(out, seqs, strict=True):
        change = np.abs(np.diff(s, axis=0)).mean(0) if len(s) > 1 else np.zeros(3)
        expected = np.concatenate([s.mean(0), s.std(0), np.percentile(s, 10, axis=0),
                                   np.percentile(s, 50, axis=0), np.percentile(s, 90, axis=0),
                                   change])  # fmt: skip
        np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-5)


def test_percentiles_ignore_padding():
    x, lengths = padded([[[1.0], [5.0], [3.0]], [[2.0]]], 1, garbage=-50.0)
    out = masked_percentiles(x, lengths, (0, 50, 100))
    assert out[0, :, 0].tolist() == [1.0, 3.0, 5.0]
    assert out[1, :, 0].tolist() == [2.0, 2.0, 2.0]


def test_functionals_model_output_and_l2_penalty():
    torch.manual_seed(0)
    model = Functionals(4, 6, percentiles=(25, 75), l2=0.1)
    assert model.linear.in_features == 5 * (4 + 6)
    audio, video = torch.randn(3, 7, 4), torch.randn(3, 7, 6)
    lengths = torch.tensor([7, 3, 1])
    out = model(audio, video, lengths)
    assert out.logits.shape == (3,) and out.gate is None
    torch.testing.assert_close(out.aux_loss, 0.1 * model.linear.weight.pow(2).sum())
    model(audio[:1], video[:1], lengths[:1])  # one vlog in a training batch works
    model.eval()
    assert float(model(audio, video, lengths).aux_loss) == 0.0
    audio_only = Functionals(4, 6, percentiles=(), modalities=("audio",))
    assert audio_only.linear.in_features == 3 * 4
    with pytest.raises(ValueError, match="percentiles"):
        Functionals(4, 6, percentiles=(150,))


def test_model_functionals_trains_through_train_py(tmp_path):
    from dynmultidep.experiment.train import train

    cfg = compose_config("train", [
        "model=functionals", "dataset.synthetic.preset=tiny", f"dataset.root={tmp_path}/corpus",
        "dataset.batch_size=8", "trainer.max_epochs=2", *QUIET,
        f"paths.output_dir={tmp_path}/run",
    ])  # fmt: skip
    train(cfg)
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["model"] == "dynmultidep.models.functionals.Functionals"
    assert 0.0 <= report["metrics"]["acc"] <= 1.0
    assert (tmp_path / "run" / "predictions.csv").is_file()
