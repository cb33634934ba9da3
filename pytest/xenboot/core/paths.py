"""Where the project's own files and caches are."""
import os
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[3]
CONFIGS = REPO / "configs"
IMAGES = REPO / "images"


def cache_root():
    """XENBOOT_CACHE, or .cache/ in the checkout: reused by every boot."""
    return pathlib.Path(os.environ.get("XENBOOT_CACHE") or REPO / ".cache")


def out_root():
    return pathlib.Path(os.environ.get("XENBOOT_OUT") or REPO / "out")
