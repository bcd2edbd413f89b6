"""Write the SDP exchanges a harness run recorded into tests/data/sdp/ (how the files here were made).

.venv/bin/python tests/data/sdp/extract.py captures/<run>/result.json PEER NAME
    # the descriptions PEER applied (its own and its partner's), from the run's peer events
.venv/bin/python tests/data/sdp/extract.py captures/<run>/<capture>.pcap - NAME
    # every SDP seen on the wire (SIP, Janus API), in capture order
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    src, peer, name = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    out = []
    if src.suffix == ".json":
        run = json.loads(src.read_text())
        for ev in run["peer_events"][peer]:
            side = {"localdescription": "local", "remotedescription": "remote"}.get(ev["kind"])
            if side:
                party = peer if side == "local" else f"{peer}'s remote"
                out.append(
                    {"party": party, "type": ev["data"]["type"], "sdp": ev["data"].get("sdp", "")}
                )
        source = f"{run['scenario']} seed {run['seed']}, peer {peer}"
    else:
        from harness.analysis.analyzer import analyze_file

        for ev in analyze_file(src).sdp:
            o = next((t for _, t in ev.sdp.session if t.startswith("o=")), "o=")
            out.append(
                {
                    "party": " ".join(o[2:].split()[:2]),
                    "type": ev.type or "offer",
                    "sdp": ev.sdp.text,
                    "frame": ev.frame,
                    "source": ev.source,
                    "dialog": ev.dialog,
                    "src": list(ev.src),
                    "dst": list(ev.dst),
                }
            )
        source = f"{src.parent.name}/{src.name}"
    (HERE / f"{name}.json").write_text(
        json.dumps({"source": source, "descriptions": out}, indent=1) + "\n"
    )
    print(f"{name}.json: {len(out)} descriptions from {source}")


if __name__ == "__main__":
    main()
