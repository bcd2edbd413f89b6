"""Named link profiles from public presets; numbers and sources live in profiles.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from harness.conditions.model import LinkConditions

PROFILES_FILE = Path(__file__).with_name("profiles.yaml")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    source: str
    up: LinkConditions
    down: LinkConditions


@cache
def _profiles() -> dict[str, Profile]:
    raw = yaml.safe_load(PROFILES_FILE.read_text())
    out = {}
    for name, entry in raw.items():
        both = entry.get("both", {})
        out[name] = Profile(
            name=name,
            description=entry["description"],
            source=entry["source"],
            up=LinkConditions(**{**both, **entry.get("up", {})}),
            down=LinkConditions(**{**both, **entry.get("down", {})}),
        )
    return out


def profile_names() -> list[str]:
    return list(_profiles())


def get_profile(name: str) -> Profile:
    try:
        return _profiles()[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r} (known: {', '.join(_profiles())})") from None


def all_profiles() -> list[Profile]:
    return list(_profiles().values())
