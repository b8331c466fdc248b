"""Dataset sources, loaded once per study by the driver and shared by all trials."""

from tuner.data._load import Dataset, load_dataset

__all__ = ["Dataset", "load_dataset"]
