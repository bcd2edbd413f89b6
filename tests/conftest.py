"""Shared test settings: captures of test runs go under the pytest temp dir."""

import os
import tempfile

os.environ.setdefault("HARNESS_CAPTURES", os.path.join(tempfile.gettempdir(), "rtc-harness-test-captures"))
