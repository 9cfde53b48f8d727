"""Streams and windows: the synthetic generator and loaders for real datasets."""

from ekya.data.base import CLASSES, StreamSource, Window

__all__ = ["CLASSES", "StreamSource", "Window"]
