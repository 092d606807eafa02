"""predict.py on video files: extraction into a cache, a row per video, and a
timeline of per-second contributions; the attribution itself."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import QUIET, TINY_MODEL, compose_config
from dynmultidep.data.lmvd import VIDEO_COLUMNS as LMVD_COLUMNS
from dynmultidep.errors import CheckpointError, DataError
from dynmultidep.features.corpus import extraction_manifest
from dynmultidep.features.for_checkpoint import (
    cache_folder,
    extract_for_checkpoint,
    is_video_input,
    settings_for,
)
from dynmultidep.features.pipeline import ExtractionSettings
from dynmultidep.features.synthetic_video import VlogSpec, write_video
from dynmultidep.features.visual import find_predictor
from dynmultidep.models.output import ModelOutput
from dynmultidep.tasks.outputs.timeline import step_contributions
from dynmultidep.tasks.predict import predict
from dynmultidep.tasks.train import train

pytest.importorskip("opensmile")  # the `extract` extra; `make test` installs it

SPEC = VlogSpec(seconds=6.3, blank=(1, 4))


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def checkpoint(synthetic_corpus, tmp_path_factory) -> str:
    """A tiny model trained on the synthetic D-Vlog twin (eGeMAPS and landmarks)."""
    root, _ = synthetic_corpus("dvlog", "tiny")
    return str(train_tiny(root, tmp_path_factory.mktemp("train"), batch_size=8))


def train_tiny(root: Path, out: Path, batch_size: int) -> Path:
    """One epoch of a tiny model with the D-Vlog config on ``root``; its last checkpoint."""
    cfg = compose_config(
        "train",
        ["dataset=dvlog", f"dataset.root={root}", f"dataset.batch_size={batch_size}",
         "dataset.max_tokens=null", "trainer.max_epochs=1", f"paths.output_dir={out}",
         *TINY_MODEL, *QUIET],
    )  # fmt: skip
    train(cfg)
    return out / "checkpoints" / "last.ckpt"


def predict_config(ckpt: str, video_input: Path, out: Path, *extra: str):
    return compose_config(
        "predict",
        [f"ckpt_path={ckpt}", f"input={video_input}", f"paths.output_dir={out}",
         f"extract.cache_dir={out}/cache", *QUIET[2:], *extra],
    )  # fmt: skip


def test_predict_on_a_video_writes_its_row_and_its_timeline(checkpoint, tmp_path):
    video = write_video(tmp_path / "in" / "my vlog.mp4", SPEC)
    out = tmp_path / "run"
    predict(predict_config(checkpoint, video, out))
    (row,) = read_csv(out / "predictions.csv")
    assert row["id"] == "my vlog" and 0 <= float(row["probability"]) <= 1
    png = out / "timelines" / "my vlog.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    steps = read_csv(out / "timelines" / "my vlog.csv")
    assert [int(r["step"]) for r in steps] == list(range(6))  # whole seconds of 6.3 s
    assert [r["face_found"] for r in steps] == ["0" if s in SPEC.blank else "1" for s in range(6)]
    assert any(float(r["audio"]) != 0 for r in steps) and any(float(r["video"]) != 0 for r in steps)
    (cached,) = (out / "cache").iterdir()
    features = cached / "my vlog" / "my vlog_visual.npy"
    stamp = features.stat().st_mtime_ns
    # a second run reuses the cache (nothing extracted again) and gives the same score
    predict(predict_config(checkpoint, video.parent, out, f"output={tmp_path}/again.csv"))
    (again,) = read_csv(tmp_path / "again.csv")
    assert again["probability"] == row["probability"]
    assert features.stat().st_mtime_ns == stamp


def test_bad_videos_are_reported_and_the_others_scored(checkpoint, tmp_path):
    folder = tmp_path / "in"
    write_video(folder / "good.mkv", VlogSpec(seconds=3))
    write_video(folder / "mute.mkv", VlogSpec(seconds=3, audio=False))
    out = tmp_path / "run"
    with pytest.raises(DataError, match=r"mute\.mkv: 1 of the videos could not be extracted"):
        predict(predict_config(checkpoint, folder, out))
    assert [r["id"] for r in read_csv(out / "predictions.csv")] == ["good"]


def test_models_on_features_the_extractor_cannot_make_are_refused(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    assert settings_for("dvlog", None, None, ckpt) == ExtractionSettings()
    assert settings_for("lmvd", None, LMVD_COLUMNS, ckpt).audio == "vggish"
    trained = {"unvoiced": "include", "upsample": 1}
    assert settings_for("dvlog", trained, None, ckpt) == ExtractionSettings(**trained)
    with pytest.raises(CheckpointError, match="extractor computes the 68 landmarks only"):
        settings_for("lmvd", None, (*LMVD_COLUMNS, "gaze_angle_x", "gaze_angle_y"), ckpt)
    video = write_video(tmp_path / "v.mkv", VlogSpec(seconds=2))
    with pytest.raises(CheckpointError, match=r"model\.ckpt: was trained on LMVD's VGGish audio"):
        extract_for_checkpoint(video, ExtractionSettings(audio="vggish"), tmp_path, ckpt)
    assert is_video_input(video) and is_video_input(tmp_path) and not is_video_input(ckpt)
    predictor = find_predictor()
    folders = {
        cache_folder("c", extraction_manifest(settings, predictor))
        for settings in (ExtractionSettings(), ExtractionSettings(unvoiced="include"))
    }
    fake = tmp_path / "other_predictor.dat"
    fake.write_bytes(predictor.read_bytes()[: 1 << 21])  # another model file
    folders.add(cache_folder("c", extraction_manifest(ExtractionSettings(), fake)))
    assert len(folders) == 3  # other settings or other model files: another cache folder
    with pytest.raises(CheckpointError, match="records extraction settings this version cannot"):
        settings_for("dvlog", {"hop": 3}, None, ckpt)


class LinearMean(nn.Module):
    """Mean over valid steps, then a linear read-out: linear in its inputs."""

    def __init__(self, audio_dim: int, video_dim: int):
        super().__init__()
        self.read_out = nn.Linear(audio_dim + video_dim, 1)

    def forward(self, audio, video, lengths):
        mask = (torch.arange(audio.shape[1])[None, :] < lengths[:, None]).float()[..., None]
        pooled = (torch.cat([audio, video], -1) * mask).sum(1) / lengths[:, None]
        return ModelOutput(logits=self.read_out(pooled)[:, 0], gate=None, aux_loss=None)


def test_contributions_add_up_to_the_logit_of_a_linear_model():
    torch.manual_seed(0)
    net = LinearMean(3, 4)
    audio, video = torch.randn(2, 9, 3), torch.randn(2, 9, 4)
    lengths = torch.tensor([9, 5])
    logits, from_audio, from_video = step_contributions(net, audio, video, lengths)
    at_mean = net(torch.zeros_like(audio), torch.zeros_like(video), lengths).logits
    total = from_audio.sum(1) + from_video.sum(1)
    torch.testing.assert_close(total, logits - at_mean.detach(), rtol=1e-5, atol=1e-6)
    assert (from_audio[1, 5:] == 0).all() and (from_video[1, 5:] == 0).all()
    # each item is explained alone: a batch of two equals two batches of one
    _, alone, _ = step_contributions(net, audio[1:, :5], video[1:, :5], lengths[1:])
    torch.testing.assert_close(alone[0], from_audio[1, :5])
    assert np.isfinite(from_video.numpy()).all()


def test_from_videos_to_a_trained_model_and_back(tmp_path):
    """Extract a labelled corpus, train on it with the D-Vlog config, score a new video:
    the checkpoint carries the corpus's extraction settings and predict applies them."""
    from dynmultidep.features.corpus import extract_corpus
    from dynmultidep.features.sources import read_labels

    folds = ["train"] * 4 + ["valid"] * 2 + ["test"] * 2
    videos, rows = [], []
    for i, fold in enumerate(folds):
        spec = VlogSpec(seconds=3.2, blank=(1,) if i % 2 else (), pitch=120 + 20 * i, seed=i)
        videos.append(write_video(tmp_path / "videos" / f"{i:02d}.mkv", spec))
        rows.append(f"{i:02d},{'depression' if i % 2 else 'normal'},{'f' if i < 5 else 'm'},{fold}")
    (tmp_path / "labels.csv").write_text("id,label,gender,fold\n" + "\n".join(rows) + "\n")
    corpus = tmp_path / "corpus"
    settings = ExtractionSettings(unvoiced="include")  # not the default: must travel
    report = extract_corpus(videos, corpus, settings, labels=read_labels(tmp_path / "labels.csv"))
    assert len(report.of("extracted")) == 8
    out = tmp_path / "train"
    ckpt = train_tiny(corpus, out, batch_size=4)
    rows = read_csv(out / "predictions.csv")
    assert sorted(r["id"] for r in rows) == ["06", "07"]  # the test fold, ids kept as strings
    new = write_video(tmp_path / "new" / "new.mkv", VlogSpec(seconds=2.4))
    scored = tmp_path / "scored"
    predict(predict_config(str(ckpt), new, scored))
    (cached,) = (scored / "cache").iterdir()
    assert cached.name.startswith("egemaps-")
    record = (cached / "features.json").read_text()
    assert '"unvoiced": "include"' in record
    assert [r["id"] for r in read_csv(scored / "predictions.csv")] == ["new"]
