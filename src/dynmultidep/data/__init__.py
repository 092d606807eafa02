"""Data layer: corpus readers, the synthetic twins, batching and the DataModule."""

from dynmultidep.data.corpora import CORPORA, CorpusSpec, get_corpus
from dynmultidep.data.datamodule import DepressionDataModule
from dynmultidep.data.dataset import PadCollate, VlogDataset
from dynmultidep.data.normalization import FeatureStandardizer
from dynmultidep.data.records import Record
from dynmultidep.data.sampler import LengthBucketSampler, padding_fraction
from dynmultidep.data.vlogs import Vlog, load_vlogs

__all__ = [
    "CORPORA",
    "CorpusSpec",
    "DepressionDataModule",
    "FeatureStandardizer",
    "LengthBucketSampler",
    "PadCollate",
    "Record",
    "Vlog",
    "VlogDataset",
    "get_corpus",
    "load_vlogs",
    "padding_fraction",
]
