"""Data layer: corpus readers, the synthetic twins, batching and the DataModule.

The names below are imported on first use (PEP 562), so that the corpus
readers can be used without importing Lightning and torch (the feature
extractor's worker processes start in well under a second).
"""

from importlib import import_module

_EXPORTS = {
    "CORPORA": "corpora",
    "CorpusSpec": "corpora",
    "get_corpus": "corpora",
    "DepressionDataModule": "datamodule",
    "PadCollate": "dataset",
    "VlogDataset": "dataset",
    "FeatureStandardizer": "normalization",
    "Record": "records",
    "LengthBucketSampler": "sampler",
    "padding_fraction": "sampler",
    "Vlog": "vlogs",
    "load_vlogs": "vlogs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
