"""Digests that cache keys are built from."""


from ekya.data.base import Window
from ekya.data.cache import windows_digest
from tests.helpers import random_window


def test_digest_changes_with_any_crop_or_label():
    window = random_window(0)
    changed_label = Window(**{**window.__dict__, "labels": (window.labels + 1) % 6})
    pixels = window.images.copy()
    pixels[0, 0, 0, 0] ^= 1
    changed_pixel = Window(**{**window.__dict__, "images": pixels})
    digests = {windows_digest([window]), windows_digest([changed_label]), windows_digest([changed_pixel])}
    assert len(digests) == 3
    assert windows_digest([window]) == windows_digest([random_window(0)])
