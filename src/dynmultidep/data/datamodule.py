"""One LightningDataModule for every corpus: D-Vlog, LMVD, DAIC-WOZ, E-DAIC and their
synthetic twins.

The interview corpora (DAIC-WOZ, E-DAIC) are read from their release (``root``) once
into a prepared corpus under ``interview.cache_dir`` (:mod:`dynmultidep.data.interviews`),
which is then read like the others; their audio and visual widths follow the feature
sets chosen in ``interview``.

Which vlogs go where:

* ``train`` and ``valid`` folds: vlogs of ``train_gender``;
* ``test`` fold: vlogs of ``test_gender`` (cross-gender grids train on one
  gender and test on the other).

Everything is read from disk once and kept in memory. Training batches come
from :class:`LengthBucketSampler`; validation and test batches hold vlogs in
ascending length. In distributed training the sampler shards training batches
across ranks itself and evaluation folds are split by :mod:`dynmultidep.data.sharding`,
so the trainer needs ``use_distributed_sampler=False``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from dynmultidep.data.corpora import get_corpus
from dynmultidep.data.dataset import PadCollate, VlogDataset, random_crops
from dynmultidep.data.faces import N_LANDMARKS, FacePreparation
from dynmultidep.data.feature_record import (
    FEATURE_RECORD,
    corpus_visual_columns,
    read_feature_record,
    recorded_visual_columns,
)
from dynmultidep.data.interviews.feature_sets import column_sets
from dynmultidep.data.interviews.prepare import InterviewOptions, prepare
from dynmultidep.data.normalization import FeatureStandardizer
from dynmultidep.data.openface import describe_columns
from dynmultidep.data.records import Record, normalize_gender, select_records
from dynmultidep.data.sampler import LengthBucketSampler, padding_fraction
from dynmultidep.data.sharding import shard
from dynmultidep.data.synthetic import (
    MANIFEST,
    InterviewTwinSpec,
    SyntheticSpec,
    generate_corpus,
    generate_interview_twin,
    manifest_differences,
    read_manifest,
)
from dynmultidep.data.vlogs import Vlog, load_vlogs
from dynmultidep.errors import DataError

log = logging.getLogger(__name__)

_STAGE_FOLDS = {"fit": ("train", "valid"), "validate": ("valid",), "test": ("test",)}


class DepressionDataModule(L.LightningDataModule):
    """Batches of vlogs for training and evaluation.

    Args:
        corpus: ``"dvlog"`` or ``"lmvd"``: the file layout under ``root``.
        root: corpus folder.
        train_gender: ``both``, ``m``/``male`` or ``f``/``female`` for the
            train and valid folds (DAIC-WOZ: its codes ``0`` or ``1``); must be
            ``both`` for LMVD (no gender).
        test_gender: the same, for the test fold.
        batch_size: most vlogs in a training batch.
        eval_batch_size: vlogs per validation/test batch (default ``batch_size``).
        max_tokens: most ``vlogs x longest length`` in a training batch; bounds
            memory and padding on long-tailed lengths (``None``: no bound).
        bucket_ratio: longest/shortest length within a sampler bucket.
        num_workers, pin_memory: passed to every DataLoader.
        standardize: standardise each feature with train-fold statistics.
        crop_attempts: random crops tried per training vlog (0 = off; the
            published recipe uses 5).
        crop_min_length: shortest crop kept (published: 500 D-Vlog, 400 LMVD).
        face_normalization: ``None`` (landmarks as stored), ``center_scale`` or
            ``similarity``: each frame's landmarks in face coordinates
            (:mod:`dynmultidep.data.faces`), before standardisation, which then
            divides all landmark features by one scale (they share a unit).
        head_pose: with a face normalisation, keep what it removes as four pose
            columns after the landmarks (:data:`dynmultidep.data.faces.POSE_COLUMNS`;
            ``video_dim`` grows by 4); no effect without one.
        random_crop: ``None``, or the least fraction of a training item that a random
            window of it, drawn anew at every epoch, keeps (augmentation).
        synthetic: if given (``preset``, ``n``, ``length_scale``, ``seed``), a
            synthetic corpus in ``corpus``'s layout is generated at ``root``
            when that folder holds none.
        seed: seeds the crops and the batch shuffling.
        interview: for DAIC-WOZ and E-DAIC: ``audio`` and ``visual`` (feature set names,
            :mod:`dynmultidep.data.interviews.feature_sets`), ``participant_only``
            (DAIC-WOZ: only the seconds of the participant's turns), ``cache_dir``
            (where prepared corpora are kept) and ``workers`` (processes preparing).
        audio_dim, video_dim: optional; checked against the corpus's widths
            (the configs state them so that model configs can read them). The
            video width is the number of visual columns in the corpus's
            ``features.json`` (:mod:`dynmultidep.data.feature_record`), or the
            layout's 136 landmarks without one.

    The visual columns (``video_columns``) travel in the state dict, so a
    checkpoint says which features its model was trained on.
    """

    def __init__(
        self,
        corpus: str = "dvlog",
        root: str | Path = "data/synthetic_dvlog",
        train_gender: str = "both",
        test_gender: str = "both",
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        max_tokens: int | None = None,
        bucket_ratio: float = 1.05,
        num_workers: int = 0,
        pin_memory: bool = False,
        standardize: bool = True,
        crop_attempts: int = 0,
        crop_min_length: int = 500,
        face_normalization: str | None = None,
        head_pose: bool = False,
        random_crop: float | None = None,
        synthetic: dict | None = None,
        seed: int = 0,
        audio_dim: int | None = None,
        video_dim: int | None = None,
        interview: dict | None = None,
    ):
        super().__init__()
        self.spec = get_corpus(corpus)
        self.root = Path(root)
        self.data_root = self.root  # where labels.csv and the arrays are: for an interview
        # corpus, its prepared corpus (known once prepared)
        self.interview: InterviewOptions | None = None
        self.interview_settings = dict(interview or {})
        if self.spec.interview is not None:
            chosen = {k: self.interview_settings.get(k, getattr(self.spec.interview, k))
                      for k in ("audio", "visual", "participant_only")}  # fmt: skip
            self.interview = InterviewOptions(corpus, **chosen)
        elif interview is not None:
            raise ValueError(f"dataset.interview applies to the interview corpora, not {corpus!r}")
        self.audio_columns: tuple[str, ...] | None = None
        if self.interview is not None:
            self.audio_columns = self.interview.columns("audio")
            self.video_columns = self.interview.columns("visual")
        else:
            self.video_columns = corpus_visual_columns(self.root, self.spec)
        self.faces = FacePreparation(face_normalization, head_pose)
        if face_normalization is not None and len(self.video_columns) != 2 * N_LANDMARKS:
            raise ValueError(
                f"face_normalization={face_normalization!r} works on the 136 landmark columns "
                f"alone, but this corpus has {describe_columns(self.video_columns)}; use null"
            )
        # settings of a corpus extracted from videos (dynmultidep.features), else None
        record = (read_feature_record(self.root) if self.interview is None else None) or {}
        self.extraction = (record.get("extraction") or {}).get("settings")
        if audio_dim is not None and audio_dim != self.audio_dim:
            raise ValueError(
                f"audio_dim={audio_dim} does not match corpus {corpus!r} ({self.audio_dim})"
            )
        if video_dim is not None and video_dim != self.video_dim:
            if self.interview is not None or recorded_visual_columns(self.root) is None:
                raise ValueError(
                    f"video_dim={video_dim} does not match corpus {corpus!r} ({self.video_dim}); "
                    f"a corpus with other visual columns names them in {FEATURE_RECORD}"
                )
            raise DataError(
                self.root / FEATURE_RECORD,
                f"records {describe_columns(self.video_columns)} but the config says "
                f"video_dim={video_dim}; remove dataset.video_dim or set it to {self.video_dim}",
            )
        self.index_path = self.root / "labels.csv"
        self.genders = {}
        for key, value in (("train_gender", train_gender), ("test_gender", test_gender)):
            gender = normalize_gender(value)
            if gender is not None and not self.spec.has_gender:
                raise DataError(
                    self.index_path,
                    f"{corpus} has no gender labels, so {key}={value!r} cannot be honoured; "
                    "use 'both'",
                )
            if gender is not None and gender not in self.spec.genders:
                raise ValueError(f"dataset.{key}={value!r}: {corpus}'s genders are "
                                 f"{' and '.join(self.spec.genders)} (or both)")  # fmt: skip
            self.genders[key] = gender
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.max_tokens = max_tokens
        self.bucket_ratio = bucket_ratio
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.crop_attempts = crop_attempts
        self.crop_min_length = crop_min_length
        if random_crop is not None and not 0 < random_crop <= 1:
            raise ValueError(f"random_crop must lie in (0, 1], got {random_crop}")
        self.random_crop = random_crop
        self.synthetic = None
        if synthetic is not None and self.interview is not None:
            self.synthetic = InterviewTwinSpec(corpus=corpus, **dict(synthetic))
        elif synthetic is not None:
            layout = "dvlog" if corpus == "dvlog" else "lmvd"
            self.synthetic = SyntheticSpec(layout=layout, **dict(synthetic))
        self.seed = seed
        # landmarks in face coordinates share one unit: one scale for all of them
        shared = {"video": 2 * N_LANDMARKS} if face_normalization is not None else {}
        self.standardizer = FeatureStandardizer(shared_scale=shared) if standardize else None
        self._records: list[Record] | None = None
        self._folds: dict[str, list[Vlog]] = {}
        # fold name -> ids, replacing the index's fold column (k-fold jobs: use_split)
        self.split: dict[str, set[str]] | None = None
        self.held_out: frozenset[str] | None = None  # training vlogs kept for a gate

    # ------------------------------------------------------------------ data
    @property
    def audio_dim(self) -> int:
        return self.spec.audio_dim if self.audio_columns is None else len(self.audio_columns)

    @property
    def video_dim(self) -> int:
        """The model's visual input width: the corpus's columns, then any pose columns."""
        return len(self.video_columns) + len(self.faces.pose_columns)

    def prepare_data(self) -> None:
        """Generate the synthetic corpus if it is configured and absent."""
        if self.synthetic is None:
            return
        if not self._generated():
            log.info("generating synthetic %s corpus at %s", self.spec.name, self.root)
            try:
                if self.interview is not None:
                    workers = int(self.interview_settings.get("workers", 2))
                    generate_interview_twin(self.synthetic, self.root, workers=workers)
                else:
                    generate_corpus(self.synthetic, self.root)
            except OSError:
                if not self._generated():  # not a concurrent generator finishing first
                    raise
        self._check_manifest()

    def _generated(self) -> bool:
        """Whether the synthetic corpus at ``root`` exists (an interview twin is a release,
        without ``labels.csv``: its manifest says it is complete)."""
        marker = MANIFEST if self.interview is not None else "labels.csv"
        return (self.root / marker).is_file()

    def _prepared(self) -> None:
        """Point ``data_root`` at the prepared interview corpus, preparing it if need be."""
        if self.interview is None or self.data_root != self.root:
            return
        settings = self.interview_settings
        cache = settings.get("cache_dir") or self.root.parent / "prepared"
        self.data_root = prepare(self.root, self.interview, cache, int(settings.get("workers", 2)))
        self.index_path = self.data_root / "labels.csv"

    def _check_manifest(self) -> None:
        found = read_manifest(self.root)
        differences = {} if found is None else manifest_differences(found, self.synthetic)
        if differences:
            differing = ", ".join(
                f"{k}={have!r} (config: {want!r})" for k, (have, want) in differences.items()
            )
            raise DataError(
                self.root / "synthetic.json",
                f"this synthetic corpus was generated with {differing}; "
                "delete the folder or point dataset.root elsewhere",
            )

    def records(self) -> list[Record]:
        if self._records is None:
            self._prepared()
            if not self.index_path.is_file():
                hint = (
                    "generate it with scripts/make_synthetic.py or set dataset.synthetic"
                    if self.synthetic
                    else f"set dataset.root to the {self.spec.name} corpus folder (see README)"
                )
                raise DataError(self.index_path, f"file not found; {hint}")
            self._records = self.spec.read_index(self.data_root)
        return self._records

    def use_split(self, split: dict[str, set[str]]) -> None:
        """Take the ``train`` / ``valid`` / ``test`` folds from ``split`` (fold -> ids,
        e.g. :func:`dynmultidep.protocols.kfold.job_split`) instead of the index."""
        self.split = {name: set(split[name]) for name in ("train", "valid", "test")}
        self._folds = {}

    def fold(self, name: str) -> list[Vlog]:
        """The vlogs of fold ``name`` for its gender, loaded once."""
        if name not in self._folds:
            gender = self.genders["test_gender" if name == "test" else "train_gender"]
            ids = None if self.split is None else self.split[name]
            chosen = select_records(self.records(), name, gender, self.index_path, ids)
            vlogs = load_vlogs(
                chosen, self.audio_dim, len(self.video_columns), str(self.index_path)
            )
            if not self._folds:  # the first fold loaded: check the columns once
                self.faces.check_looks_like_faces(vlogs, f"{self.spec.name} at {self.root}")
            self._folds[name] = self.faces.apply(vlogs)
            labels = np.array([v.label for v in self._folds[name]])
            log.info(
                "%s %s: %d vlogs (%d depression, %d normal), gender %s",
                self.spec.name,
                name,
                len(labels),
                labels.sum(),
                len(labels) - labels.sum(),
                gender or "both",
            )
        return self._folds[name]

    def hold_out(self, share: float) -> frozenset[str]:
        """Mark ``share`` of the training fold's vlogs of each label, drawn with the
        data seed, as held out: training batches then carry ``held_out`` (see
        :class:`VlogDataset`). Returns their ids."""
        rng = np.random.default_rng([self.seed, 11])
        chosen = []
        vlogs = self.fold("train")
        for label in (0, 1):
            ids = sorted(v.id for v in vlogs if v.label == label)
            count = int(round(share * len(ids)))
            chosen += [ids[i] for i in rng.permutation(len(ids))[:count]]
        self.held_out = frozenset(chosen)
        return self.held_out

    def setup(self, stage: str | None = None) -> None:
        if self.synthetic is not None and not self._generated():
            self.prepare_data()  # setup without a Trainer (scripts, notebooks)
        for name in _STAGE_FOLDS.get(stage or "", ("train", "valid", "test")):
            self.fold(name)

    def _collate(self) -> PadCollate:
        if self.standardizer is not None and not self.standardizer.fitted:
            self.standardizer.fit(self.fold("train"))
        return PadCollate(self.standardizer)

    # ----------------------------------------------------------- dataloaders
    def train_dataset(self) -> VlogDataset:
        vlogs = self.fold("train")
        crops = []
        if self.crop_attempts > 0:
            rng = np.random.default_rng([self.seed, 7])
            lengths = np.array([v.length for v in vlogs])
            crops = random_crops(lengths, self.crop_attempts, self.crop_min_length, rng)
        return VlogDataset(
            vlogs, crops, random_crop=self.random_crop, seed=self.seed, held_out=self.held_out
        )

    def train_sampler(self, dataset: VlogDataset) -> LengthBucketSampler:
        replicas, rank = 1, 0
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:
            replicas, rank = trainer.world_size, trainer.global_rank
        sampler = LengthBucketSampler(
            dataset.lengths,
            batch_size=self.batch_size,
            max_tokens=self.max_tokens,
            bucket_ratio=self.bucket_ratio,
            shuffle=True,
            seed=self.seed,
            num_replicas=replicas,
            rank=rank,
            with_epoch=dataset.random_crop is not None,
        )
        # A resumed run builds its loader at the restored epoch, and Lightning prefetches
        # the first batch before it calls set_epoch: start the sampler where Lightning
        # will set it (the number of epochs processed).
        if trainer is not None:
            sampler.set_epoch(trainer.fit_loop.epoch_progress.current.processed)
        return sampler

    def train_dataloader(self) -> DataLoader:
        dataset = self.train_dataset()
        sampler = self.train_sampler(dataset)
        random_order = np.random.default_rng(self.seed).permutation(len(dataset))
        random_batches = [
            random_order[i : i + self.batch_size] for i in range(0, len(dataset), self.batch_size)
        ]
        log.info(
            "train: %d items (%d vlogs + %d crops) in %d batches per epoch; padding is %.1f%% "
            "of the padded tensor (random batches of %d: %.1f%%)",
            len(dataset),
            len(dataset.vlogs),
            len(dataset) - len(dataset.vlogs),
            len(sampler),
            100 * padding_fraction(sampler.batches(0), dataset.lengths),
            self.batch_size,
            100 * padding_fraction(random_batches, dataset.lengths),
        )
        return self._loader(dataset, batch_sampler=sampler)

    def fold_dataloader(self, name: str) -> DataLoader:
        """Batches of fold ``name`` in ascending length, as for evaluation; in distributed
        runs, this rank's shard of them (:mod:`dynmultidep.data.sharding`)."""
        vlogs = sorted(self.fold(name), key=lambda v: v.length)
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1:
            vlogs = shard(vlogs, trainer.global_rank, trainer.world_size)
        return self._loader(VlogDataset(vlogs), batch_size=self.eval_batch_size, shuffle=False)

    def val_dataloader(self) -> DataLoader:
        return self.fold_dataloader("valid")

    def test_dataloader(self) -> DataLoader:
        return self.fold_dataloader("test")

    def _loader(self, dataset: VlogDataset, **kwargs) -> DataLoader:
        return DataLoader(
            dataset,
            collate_fn=self._collate(),
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            # a generator of its own: iterating a loader never moves the global one
            # (see dynmultidep.tasks.callbacks.reproducibility)
            generator=torch.Generator().manual_seed(self.seed),
            **kwargs,
        )

    # ------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict:
        """Saved in every checkpoint: the visual columns, the extraction settings
        of a corpus extracted from videos, and the training-fold feature statistics."""
        state: dict = {"visual_columns": list(self.video_columns)}
        if self.audio_columns is not None:
            state["audio_columns"] = list(self.audio_columns)
        if self.extraction is not None:
            state["extraction"] = dict(self.extraction)
        if self.standardizer is not None and self.standardizer.fitted:
            state["standardizer"] = self.standardizer.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        trained = state_dict.get("visual_columns")
        if trained is not None and tuple(trained) != self.video_columns:
            raise DataError(
                self.root,
                f"the checkpoint was trained on visual columns {describe_columns(trained)}, "
                f"this corpus has {describe_columns(self.video_columns)}",
            )
        trained = state_dict.get("audio_columns")
        if trained is not None and tuple(trained) != self.audio_columns:
            have = "its layout's audio" if self.audio_columns is None else (
                f"audio sets {', '.join(self.interview.audio)}")  # fmt: skip
            raise DataError(
                self.root,
                f"the checkpoint was trained on {len(trained)} audio columns "
                f"({', '.join(column_sets(trained))}), this corpus has {have}",
            )
        if "standardizer" in state_dict and self.standardizer is not None:
            self.standardizer.load_state_dict(state_dict["standardizer"])
