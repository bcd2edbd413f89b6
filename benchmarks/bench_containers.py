"""What the container runtime costs: start-to-ready per component as a host process and
as a container, and the flagship's wall time in both runtimes, side by side in one run.

    .venv/bin/python benchmarks/bench_containers.py [--repeat 5] [--flagship 3] [--suite bookworm]

Components start in one lab (open-internet) alternately as a process and from
`rtc-harness/<kind>:<suite>`, `--repeat` times each; the time is from `start()` to
ready (the component's own ready check), after the node's adapter exists, as in a
scenario where adapters are made while captures start. The flagship cells
(ci/flagship.sh) run alternately with `runtime: process` and `runtime: docker`
(every component and peer in a container). Medians and ratios; the machine is shared.
Target: containers add at most 1 s to the flagship.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.components import COMPONENTS  # noqa: E402
from harness.config.scenario import load_scenarios  # noqa: E402
from harness.lab import Lab  # noqa: E402
from harness.runtime.engine import default_image  # noqa: E402
from harness.scenario.runner import run_scenario_sync  # noqa: E402

# kind -> (node, options): each alone on its node, as the flagship places them
COMPONENT_SETUP = {
    "coturn": ("server", {}),
    "janus": ("server", {}),
    "kamailio": ("server", {}),
    "rtpengine": ("server", {}),
    "baresip": ("peer-b", {"user": "erin", "registrar": "198.18.0.12:5060"}),
    "sipp": ("peer-b", {"role": "uas"}),
}
FLAGSHIP = [
    ("scenarios/gateway/janus-sip-call.yaml", "janus-sip-call-chromium"),
    (
        "scenarios/gateway/janus-sip-ice-restart.yaml",
        "janus-sip-ice-restart-notrickle-relay-nat-chromium",
    ),
]


def start_to_ready(lab: Lab, kind: str, image: str | None, n: int) -> float:
    import harness.components.all  # noqa: F401  (registers the kinds)

    node, options = COMPONENT_SETUP[kind]
    comp = COMPONENTS[kind](f"{kind}{n}", node, options, image=image)
    t = time.perf_counter()
    comp.start(lab)
    took = time.perf_counter() - t
    comp.stop()
    return took


def bench_components(repeat: int, suite: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with Lab("topologies/open-internet.yaml") as lab:
        lab.prepare_images(
            [(n, default_image(k, suite), "") for k, (n, _) in COMPONENT_SETUP.items()]
        )
        for kind in COMPONENT_SETUP:
            proc, cont = [], []
            for i in range(repeat):
                proc.append(start_to_ready(lab, kind, None, 2 * i))
                cont.append(start_to_ready(lab, kind, default_image(kind, suite), 2 * i + 1))
            out[kind] = {
                "process_s": statistics.median(proc),
                "container_s": statistics.median(cont),
                "added_s": statistics.median(c - p for c, p in zip(cont, proc, strict=True)),
            }
            print(
                f"{kind:10} process {out[kind]['process_s']:.3f} s  container "
                f"{out[kind]['container_s']:.3f} s",
                flush=True,
            )
    return out


def bench_flagship(repeat: int, suite: str) -> dict[str, dict[str, float | str]]:
    out: dict[str, dict[str, float | str]] = {}
    for path, name in FLAGSHIP:
        [scenario] = [s for s in load_scenarios(ROOT / path) if s.name == name]
        times: dict[str, list[float]] = {"process": [], "docker": []}
        verdicts: dict[str, list[str]] = {"process": [], "docker": []}
        for i in range(repeat):
            for runtime in ("process", "docker"):
                scenario.spec.runtime, scenario.spec.suite = runtime, suite
                t = time.perf_counter()
                result = run_scenario_sync(scenario, seed=1000 + i)
                times[runtime].append(time.perf_counter() - t)
                verdicts[runtime].append(result.verdict or ("pass" if result.passed else "fail"))
                print(
                    f"{name} {runtime}: {times[runtime][-1]:.2f} s {verdicts[runtime][-1]}",
                    flush=True,
                )
        p, d = statistics.median(times["process"]), statistics.median(times["docker"])
        out[name] = {
            "process_s": p,
            "docker_s": d,
            "added_s": d - p,
            "ratio": d / p,
            "verdicts": json.dumps(verdicts),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="starts per component and runtime")
    ap.add_argument("--flagship", type=int, default=3, help="flagship runs per runtime")
    ap.add_argument("--suite", default="bookworm")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    components = bench_components(args.repeat, args.suite)
    flagship = bench_flagship(args.flagship, args.suite) if args.flagship else {}
    results: dict[str, object] = {"components": components}
    if args.flagship:
        results["flagship"] = flagship
    print("\nstart-to-ready, median of", args.repeat)
    print(f"{'component':10} {'process':>9} {'container':>10} {'added':>7}")
    for kind, c in components.items():
        print(f"{kind:10} {c['process_s']:9.3f} {c['container_s']:10.3f} {c['added_s']:7.3f}")
    if args.flagship:
        print("\nflagship wall time, median of", args.flagship)
        for name, r in flagship.items():
            print(
                f"{name}: process {r['process_s']:.2f} s, containers {r['docker_s']:.2f} s, "
                f"added {r['added_s']:+.2f} s, ratio {r['ratio']:.2f}  {r['verdicts']}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
