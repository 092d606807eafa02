"""The in-memory dataset of vlogs, with optional random crops, and batching."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from dynmultidep.data.normalization import FeatureStandardizer
from dynmultidep.data.vlogs import Vlog

Segment = tuple[int, int, int]  # (vlog index, first step, end step)


def random_crops(
    lengths: np.ndarray, attempts: int, min_length: int, rng: np.random.Generator
) -> list[Segment]:
    """Extra training segments, as in the published D-Vlog/LMVD recipe.

    For each vlog, ``attempts`` times: draw a crop length uniformly in
    ``[0, T)`` and keep it if it is at least ``min_length`` steps, at a
    uniformly drawn start. Long vlogs thus gain up to ``attempts`` crops;
    vlogs shorter than ``min_length`` gain none.
    """
    crops = []
    for index, length in enumerate(np.asarray(lengths).tolist()):
        for _ in range(attempts):
            crop = int(rng.random() * length)
            if crop >= min_length:
                start = int(rng.integers(0, length - crop + 1))
                crops.append((index, start, start + crop))
    return crops


class VlogDataset(Dataset):
    """Items are whole vlogs, then any extra segments (crops) of them.

    With ``random_crop`` (a fraction in (0, 1]), an item is a random window of it, at
    least that fraction of its length: an augmentation that shows a training vlog
    differently at each epoch. ``dataset[(i, epoch)]`` (what
    :class:`~dynmultidep.data.sampler.LengthBucketSampler` yields with
    ``with_epoch=True``) draws the window from ``(seed, epoch, i)`` alone, so a
    resumed run, a prefetched batch or a worker process sees the same windows;
    ``dataset[i]`` is epoch 0.

    ``dataset[i]`` is a dict with ``id``, ``label``, ``score`` (PHQ-8 total or
    ``None``), ``gender`` and the
    ``audio (T, Da)`` / ``video (T, Dv)`` float32 arrays of the item (views,
    no copy); given ``held_out`` (ids), also ``held_out``: whether the item's vlog
    is one of them (a crop is held out with its vlog).
    """

    def __init__(
        self,
        vlogs: Sequence[Vlog],
        extra_segments: Sequence[Segment] = (),
        random_crop: float | None = None,
        seed: int = 0,
        held_out: frozenset[str] | None = None,
    ):
        self.vlogs = list(vlogs)
        self.held_out = held_out
        self.random_crop = random_crop
        self.seed = seed
        self.segments: list[Segment] = [(i, 0, v.length) for i, v in enumerate(self.vlogs)]
        self.segments += list(extra_segments)
        self.lengths = np.array([stop - start for _, start, stop in self.segments], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        i, epoch = key if isinstance(key, tuple) else (key, 0)
        index, start, stop = self.segments[i]
        if self.random_crop is not None:
            start, stop = self._crop(start, stop, np.random.default_rng([self.seed, epoch, i]))
        vlog = self.vlogs[index]
        item = {
            "id": vlog.id,
            "label": vlog.label,
            "score": vlog.score,
            "gender": vlog.gender,
            "audio": vlog.audio[start:stop],
            "video": vlog.video[start:stop],
        }
        if self.held_out is not None:
            item["held_out"] = vlog.id in self.held_out
        return item

    def _crop(self, start: int, stop: int, rng: np.random.Generator) -> tuple[int, int]:
        length = stop - start
        keep = int(np.ceil(length * rng.uniform(self.random_crop, 1.0)))
        keep = min(max(keep, 1), length)
        offset = int(rng.integers(0, length - keep + 1))
        return start + offset, start + offset + keep


class PadCollate:
    """Stack items into a padded batch, standardising features on the way.

    Returns a dict: ``audio (B, T, Da)`` and ``video (B, T, Dv)`` float32 with
    zeros after each item's end, ``lengths (B,)`` int64 valid steps,
    ``label (B,)`` int64, ``score (B,)`` float32 (NaN where a vlog has none),
    ``id`` list[str], ``gender`` list[str | None], and
    ``held_out (B,)`` bool when the items say. Validity comes from ``lengths``
    alone: a real all-zero row is data.
    """

    def __init__(self, standardizer: FeatureStandardizer | None = None):
        self.standardizer = standardizer

    def __call__(self, items: Sequence[dict]) -> dict:
        lengths = torch.tensor([len(item["audio"]) for item in items], dtype=torch.int64)
        steps = int(lengths.max())
        batch = {
            "lengths": lengths,
            "label": torch.tensor([item["label"] for item in items], dtype=torch.int64),
            "score": torch.tensor(
                [np.nan if item.get("score") is None else item["score"] for item in items],
                dtype=torch.float32,
            ),
            "id": [item["id"] for item in items],
            "gender": [item["gender"] for item in items],
        }
        if "held_out" in items[0]:
            batch["held_out"] = torch.tensor([item["held_out"] for item in items])
        for name in ("audio", "video"):
            width = items[0][name].shape[1]
            padded = torch.zeros(len(items), steps, width, dtype=torch.float32)
            for row, item in enumerate(items):
                x = torch.from_numpy(np.ascontiguousarray(item[name]))
                if self.standardizer is not None:
                    x = self.standardizer.transform(name, x)
                padded[row, : len(x)] = x
            batch[name] = padded
        return batch
