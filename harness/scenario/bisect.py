"""`harness bisect`: the first image, in an ordered list, at which a scenario's verdict
changes; e.g. the Kamailio release that fixed (or broke) a call.

One component of the scenario is run from each image in turn (the same seeds for each,
so runs compare side by side). Binary search over the list assumes one change between
the oldest and the newest image; the ends are always run, so a list whose ends agree is
reported as "no change", never as a change found. With `repeat` > 1 an image passes
only when every run passes: an intermittent failure counts as a failure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from harness.config.scenario import Scenario
from harness.errors import HarnessError
from harness.scenario.result import RunResult
from harness.scenario.verdict import PASS, UNSUPPORTED, XPASS, verdict_of

Runner = Callable[[Scenario, int], Awaitable[RunResult]]


@dataclass
class Probe:
    """Every run of the scenario with one image."""

    image: str
    runs: list[RunResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        """Runs whose scenario held (pass, or xpass: a known failure that did not happen)."""
        return sum(1 for r in self.runs if verdict_of(r).state in (PASS, XPASS))

    @property
    def verdict(self) -> str:
        if any(verdict_of(r).state == UNSUPPORTED for r in self.runs):
            return "unsupported"
        return "pass" if self.passed == len(self.runs) else "fail"

    def version(self, component: str) -> str:
        """What the component's program said it was, in these runs."""
        found = {r.environment.get(f"version {component}", "") for r in self.runs}
        return ", ".join(sorted(v for v in found if v)) or "?"


@dataclass
class Bisection:
    scenario: str
    component: str
    images: list[str]
    probes: dict[str, Probe] = field(default_factory=dict)
    first_changed: str | None = None
    """The first image whose verdict differs from the oldest image's; None: no change."""

    def summary(self) -> str:
        if self.first_changed is None:
            ends = self.probes[self.images[0]].verdict
            return f"no change: {self.images[0]} and {self.images[-1]} both {ends}"
        i = self.images.index(self.first_changed)
        before, after = self.probes[self.images[i - 1]], self.probes[self.first_changed]
        return (
            f"the verdict changes at {self.first_changed} ({after.verdict}, "
            f"{after.version(self.component)}); {before.image} before it: {before.verdict} "
            f"({before.version(self.component)})"
        )


def target_component(scenario: Scenario, images: list[str], name: str | None) -> str:
    """The component the images are for: `name`, or the only one whose kind the images'
    repository names (`rtc-harness/kamailio:...` -> the kamailio component)."""
    comps = scenario.spec.components
    if name is not None:
        if name not in comps:
            raise HarnessError(f"{scenario.name}: no component {name!r} ({', '.join(comps)})")
        return name
    kinds = {img.rsplit(":", 1)[0].rsplit("/", 1)[-1] for img in images}
    matches = [n for n, c in comps.items() if c.kind in kinds]
    if len(kinds) != 1 or len(matches) != 1:
        raise HarnessError(
            f"{scenario.name}: say which component runs the images (--component; "
            f"components: {', '.join(comps)})"
        )
    return matches[0]


def with_image(scenario: Scenario, component: str, image: str) -> Scenario:
    """The same scenario with one component run from `image`."""
    comps = dict(scenario.spec.components)
    comps[component] = comps[component].model_copy(update={"image": image})
    spec = scenario.spec.model_copy(update={"components": comps})
    return dataclasses.replace(scenario, spec=spec)


async def bisect(
    scenario: Scenario,
    images: list[str],
    run: Runner,
    *,
    component: str | None = None,
    repeat: int = 1,
    seed: int = 1,
) -> Bisection:
    """Find the first image whose verdict differs from the first image's."""
    if len(images) < 2:
        raise HarnessError("bisect needs at least two images, oldest first")
    if repeat < 1:
        raise HarnessError("--repeat is at least 1")
    name = target_component(scenario, images, component)
    out = Bisection(scenario.name, name, list(images))

    async def probe(i: int) -> Probe:
        image = images[i]
        if image not in out.probes:
            p = Probe(image)
            sc = with_image(scenario, name, image)
            for k in range(repeat):
                p.runs.append(await run(sc, seed + k))
            if p.verdict == "unsupported":
                why = next(
                    verdict_of(r).reason for r in p.runs if verdict_of(r).state == UNSUPPORTED
                )
                raise HarnessError(f"{image}: the scenario is unsupported here: {why}")
            out.probes[image] = p
        return out.probes[image]

    lo, hi = 0, len(images) - 1
    first = (await probe(lo)).verdict
    if (await probe(hi)).verdict == first:
        return out
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (await probe(mid)).verdict == first:
            lo = mid
        else:
            hi = mid
    out.first_changed = images[hi]
    return out
