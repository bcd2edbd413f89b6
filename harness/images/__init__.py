"""Container images the harness builds itself: a Debian base made with debootstrap,
then one image per component kind and suite, from Dockerfiles kept in `ci/images/`."""

from harness.images.catalog import KINDS, SUITES, image_name

__all__ = ["KINDS", "SUITES", "image_name"]
