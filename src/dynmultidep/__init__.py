"""DynMultiDep: depression detection from vlogs with Mamba experts and dynamic fusion."""

__version__ = "0.1.0"
