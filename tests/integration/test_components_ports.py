"""Bad component input found before anything starts: unknown options, bad values, port clashes.

No lab needed: options and ports() depend only on what the scenario says.
"""

from __future__ import annotations

import pytest

from harness.components import COMPONENTS
from harness.components.baresip import Baresip
from harness.components.janus import Janus, jcfg
from harness.components.kamailio import Kamailio
from harness.components.ports import check_port_clashes, parse_range
from harness.components.rtpengine import Rtpengine, bdecode, bencode
from harness.components.sipp import Sipp, ulaw_tone
from harness.errors import ComponentError


def test_every_gateway_kind_is_registered() -> None:
    for kind in ("janus", "kamailio", "rtpengine", "baresip", "sipp"):
        assert kind in COMPONENTS


@pytest.mark.parametrize(
    ("cls", "options", "needle"),
    [
        (Janus, {"http_prot": 8088}, "option 'http_prot': unknown option"),
        (Janus, {"debug_level": 9}, "option 'debug_level'"),
        (Janus, {"rtp_port_range": "30000-20000"}, "rtp_port_range"),
        (Kamailio, {"sip_port": 0}, "option 'sip_port'"),
        (Baresip, {"rtp_ports": "abc"}, "is not LOW-HIGH"),
        (Rtpengine, {"ng_port": "x"}, "option 'ng_port'"),
        (Sipp, {"role": "uac"}, "a uac needs a target"),
    ],
)
def test_bad_option_names_component_and_key(cls: type, options: dict, needle: str) -> None:
    with pytest.raises(ComponentError) as err:
        cls("gw-1", "server", options)
    assert err.value.component == "gw-1"
    assert needle in str(err.value)


def test_same_sip_port_on_one_node_clashes() -> None:
    a = Kamailio("kam-a", "server")
    b = Baresip("ext", "server", {"rtp_ports": "41000-41009"})
    with pytest.raises(ComponentError) as err:
        check_port_clashes([a, b])
    assert str(err.value).startswith("ext: port clash on node 'server'")
    assert "bound by 'kam-a'" in str(err.value) and ":5060" in str(err.value)


def test_overlapping_media_ranges_clash() -> None:
    j = Janus("janus", "server", {"rtp_port_range": "30100-30300"})
    r = Rtpengine("rtpengine", "server")  # 30000-30199
    with pytest.raises(ComponentError, match="udp 0.0.0.0:30100"):
        check_port_clashes([j, r])


def test_no_clash_across_nodes_ports_or_addresses() -> None:
    check_port_clashes([Kamailio("k1", "server"), Kamailio("k2", "peer-a")])
    check_port_clashes([Kamailio("k1", "server"), Kamailio("k2", "server", {"sip_port": 5070})])
    check_port_clashes(
        [
            Kamailio("k1", "server", {"address": "198.18.0.12"}),
            Kamailio("k2", "server", {"address": "198.18.0.13"}),
        ]
    )
    with pytest.raises(ComponentError):  # an unset address means every address of the node
        check_port_clashes(
            [Kamailio("k1", "server", {"address": "198.18.0.12"}), Kamailio("k2", "server")]
        )
    check_port_clashes([Sipp("uas", "peer-a", {"role": "uas"})])  # own ports never clash


def test_parse_range() -> None:
    assert parse_range("20000-20199") == (20000, 20199)
    for bad in ("20000", "1-2", "5000-70000", "b-c"):
        with pytest.raises(ValueError):
            parse_range(bad)


def test_bencode_round_trip() -> None:
    msg = {"command": "offer", "flags": ["trust-address"], "n": 3, "sdp": "v=0\r\n"}
    data = bencode(msg)
    assert data.startswith(b"d7:command5:offer")
    assert bdecode(data) == msg
    with pytest.raises(ValueError):
        bdecode(data + b"x")


def test_jcfg_quotes_strings_and_skips_unset() -> None:
    text = jcfg({"general": {"a": 'x"y', "b": True, "c": 5, "d": None}})
    assert text == 'general: {\n\ta = "x\\"y"\n\tb = true\n\tc = 5\n}\n'


def test_ulaw_tone_is_one_second_of_g711() -> None:
    data = ulaw_tone(1000)
    assert len(data) == 8000
    assert data[0] in (0xFF, 0x7F)  # sin(0) = 0 encodes as mu-law zero
    assert data[:8] * 1000 == data  # 1000 Hz at 8 kHz repeats every 8 samples
