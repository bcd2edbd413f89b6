"""Register the gateway step kinds before pytest collects the YAML scenarios here.

Needed until harness.config.scenario._load_plugins imports harness.actions.gateway.
"""

import harness.actions.gateway  # noqa: F401
