"""A router's NatBehaviour and firewall preset rendered as an nftables ruleset.

Linux conntrack alone gives one NAT (endpoint-independent mapping while a port
is free, address-and-port-dependent filtering). Every other RFC 4787 behaviour
is built from dynamic maps that a filter chain after source NAT learns from
conntrack's reply tuple (lab-facts.md): which public port an internal endpoint
holds, which remote addresses it has sent to, which internal endpoint a public
port leads back to. The nat chains then read those maps.

Rules of nft 1.0.6 this file follows: one statement per line (`; }` is
rejected), `iifname` is never used in postrouting (it never matches there), and
`update` never replaces an existing element's data, so a public port already
held by another endpoint is never reused on purpose (`used_ports`).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from harness.config.forwards import Forward
from harness.config.topology import Firewall, Node
from harness.nat.behaviour import Dependence, NatBehaviour

NAT_TABLE = "rh_nat"
FIREWALL_TABLE = "rh_fw"
HAIRPIN_MARK = 0x00100000
"""Packet mark bit set by the hairpin DNAT in prerouting, read in postrouting (no iif there)."""

EIM = Dependence.ENDPOINT_INDEPENDENT
ADM = Dependence.ADDRESS_DEPENDENT
APDM = Dependence.ADDRESS_AND_PORT_DEPENDENT


@dataclass(frozen=True)
class RouterRules:
    """What the lab applies inside a router's namespace: sysctls first, then `nft -f -`."""

    nft: str
    sysctls: dict[str, str]


def router_ruleset(node: Node, *, fresh: bool = False) -> RouterRules:
    """The NAT and firewall of a router node (`node.nat is None`: plain routing).

    `fresh`: for a namespace with no tables yet, whose tables need not replace earlier
    ones (deleting a table costs 5-15 ms: the kernel waits for an RCU grace period)."""
    if not node.is_router:
        raise ValueError(f"node {node.name!r} is not a router")
    wan = node.wan
    lans = [i.name for i in node.lans]
    sysctls = {
        "net.ipv4.ip_forward": "1",
        # a hairpinned packet leaves by the interface it came in: no ICMP redirect for it
        "net.ipv4.conf.all.send_redirects": "0",
        "net.ipv4.conf.default.send_redirects": "0",
    }
    parts: list[str] = []
    if node.nat is not None and node.nat.enabled:
        timeout = str(node.nat.udp_timeout)
        sysctls["net.netfilter.nf_conntrack_udp_timeout"] = timeout
        sysctls["net.netfilter.nf_conntrack_udp_timeout_stream"] = timeout
        parts.append(
            nat_table(node.nat, wan.name, wan.address, lans, node.forwards, replace=not fresh)
        )
    if node.firewall is Firewall.UDP_BLOCKED:
        parts.append(udp_blocked_table(wan.name, lans, replace=not fresh))
    return RouterRules(nft="".join(parts), sysctls=sysctls)


def _table(name: str, body: list[str], replace: bool = True) -> str:
    """A table that replaces any earlier one of the same name when loaded (`replace`)."""
    lines = [f"table ip {name}", f"delete table ip {name}"] if replace else []
    lines.append(f"table ip {name} {{")
    lines += body
    lines.append("}")
    return "\n".join(lines) + "\n"


def _chain(name: str, hook: str | None, rules: list[str]) -> list[str]:
    lines = [f"  chain {name} {{"]
    if hook:
        lines.append(f"    {hook}")
    lines += [f"    {r}" for r in rules]
    lines.append("  }")
    return lines


def _set(name: str, type_: str, timeout: int) -> list[str]:
    kind = "map" if ":" in type_ else "set"
    return [
        f"  {kind} {name} {{",
        f"    type {type_}",
        "    flags dynamic,timeout",
        f"    timeout {timeout}s",
        "  }",
    ]


def _ifnames(names: list[str]) -> str:
    quoted = [f'"{n}"' for n in names]
    return quoted[0] if len(quoted) == 1 else "{ " + ", ".join(quoted) + " }"


def forward_rules(
    wan: str, wan_addr: IPv4Address, forwards: list[Forward]
) -> tuple[list[str], list[str]]:
    """Prerouting DNAT and postrouting static SNAT of port forwards.

    The static SNAT makes what the LAN host sends from a forwarded port leave from
    the same public port (as a real router's forward does), whatever the NAT's
    mapping behaviour: a TURN relay announces that port to its peers.
    """
    pre: list[str] = []
    post: list[str] = []
    for f in forwards:
        to = f"{f.address}:{f.to_port}" if f.to_port else str(f.address)
        pre.append(
            f'iifname "{wan}" ip daddr {wan_addr} {f.protocol} dport {f.ports} dnat ip to {to}'
        )
        sport = f.to_port or f.ports
        public = f"{wan_addr}:{f.low}" if f.to_port else str(wan_addr)
        post.append(
            f'oifname "{wan}" ip saddr {f.address} {f.protocol} sport {sport} snat ip to {public}'
        )
    return pre, post


def nat_table(
    nat: NatBehaviour,
    wan: str,
    wan_addr: IPv4Address,
    lans: list[str],
    forwards: list[Forward] | None = None,
    *,
    replace: bool = True,
) -> str:
    """RFC 4787 NAT for UDP on `wan` (plus TCP/ICMP source NAT) for traffic from `lans`,
    and the router's port forwards (before any learnt mapping)."""
    t = nat.udp_timeout
    lan = _ifnames(lans)
    pp = nat.port_preservation
    inbound = nat.filtering is not APDM or nat.hairpinning  # someone needs port -> endpoint
    body: list[str] = []

    # ---- state learnt from conntrack (all keyed on the public port or the internal endpoint)
    if nat.mapping is EIM:
        body += _set("out_eim", "ipv4_addr . inet_service : ipv4_addr . inet_service", t)
    if nat.mapping is ADM:
        body += _set(
            "out_adm", "ipv4_addr . inet_service . ipv4_addr : ipv4_addr . inet_service", t
        )
    if pp:
        body += _set("used_ports", "inet_service", t)
        if nat.mapping is not EIM:
            body += _set("seen_src", "ipv4_addr . inet_service", t)
    if inbound:
        body += _set("in_map", "inet_service : ipv4_addr . inet_service", t)
    if nat.filtering is ADM:
        body += _set("perm", "inet_service . ipv4_addr", t)

    # ---- prerouting: inbound filtering (EIF/ADF) and hairpinning, both DNAT through in_map
    pre, fwd_post = forward_rules(wan, wan_addr, forwards or [])
    if nat.filtering is EIM:
        pre.append(f'iifname "{wan}" ip daddr {wan_addr} dnat ip to udp dport map @in_map')
    elif nat.filtering is ADM:
        pre.append(
            f'iifname "{wan}" ip daddr {wan_addr} udp dport . ip saddr @perm '
            "dnat ip to udp dport map @in_map"
        )
    if nat.hairpinning:
        # internal traffic is not filtered: any held public port hairpins
        pre.append(
            f"iifname {lan} ip daddr {wan_addr} udp dport @in_map "
            f"meta mark set meta mark | {HAIRPIN_MARK:#x} dnat ip to udp dport map @in_map"
        )
    body += _chain("prerouting", "type nat hook prerouting priority dstnat; policy accept;", pre)

    # ---- postrouting: choose the public port of a new UDP flow
    mapping: list[str] = []
    if nat.mapping is EIM:
        mapping.append("ip saddr . udp sport @out_eim snat ip to ip saddr . udp sport map @out_eim")
    elif nat.mapping is ADM:
        key = "ip saddr . udp sport . ct original ip daddr"
        mapping.append(f"{key} @out_adm snat ip to {key} map @out_adm")
    if pp:
        if nat.mapping is not EIM:
            # this endpoint holds a mapping already: a new remote needs a new port
            mapping.append(f"ip saddr . udp sport @seen_src snat ip to {wan_addr} fully-random")
        mapping.append(f"udp sport @used_ports snat ip to {wan_addr} fully-random")
        mapping.append(f"snat ip to {wan_addr}")  # keeps the source port when it is free
    else:
        mapping.append(f"snat ip to {wan_addr} fully-random")
    body += _chain("udp_mapping", None, mapping)

    post = fwd_post + [f'oifname "{wan}" meta l4proto udp ip saddr != {wan_addr} jump udp_mapping']
    if nat.hairpinning:
        post.append(f"meta mark & {HAIRPIN_MARK:#x} == {HAIRPIN_MARK:#x} jump udp_mapping")
    post.append(f'oifname "{wan}" ip saddr != {wan_addr} snat ip to {wan_addr}')
    body += _chain("postrouting", "type nat hook postrouting priority srcnat; policy accept;", post)

    # ---- learning, after NAT decided: outbound flows and replies of inbound-opened flows
    internal = "ct original ip saddr . ct original proto-src"
    public = "ct reply ip daddr . ct reply proto-dst"
    learn_out: list[str] = []
    learn_in: list[str] = []  # the flow was opened from outside: roles of the tuples swap
    if nat.mapping is EIM:
        learn_out.append(f"update @out_eim {{ {internal} : {public} }}")
        learn_in.append(
            "update @out_eim { ct reply ip saddr . ct reply proto-src : "
            "ct original ip daddr . ct original proto-dst }"
        )
    if nat.mapping is ADM:
        learn_out.append(f"update @out_adm {{ {internal} . ct original ip daddr : {public} }}")
        learn_in.append(
            "update @out_adm { ct reply ip saddr . ct reply proto-src . ct original ip saddr : "
            "ct original ip daddr . ct original proto-dst }"
        )
    if pp:
        learn_out.append("update @used_ports { ct reply proto-dst }")
        learn_in.append("update @used_ports { ct original proto-dst }")
        if nat.mapping is not EIM:
            learn_out.append(f"update @seen_src {{ {internal} }}")
            learn_in.append("update @seen_src { ct reply ip saddr . ct reply proto-src }")
    if inbound:
        learn_out.append(f"update @in_map {{ ct reply proto-dst : {internal} }}")
        learn_in.append(
            "update @in_map { ct original proto-dst : ct reply ip saddr . ct reply proto-src }"
        )
    if nat.filtering is ADM:
        learn_out.append("update @perm { ct reply proto-dst . ct original ip daddr }")
        learn_in.append("update @perm { ct original proto-dst . ct original ip saddr }")
    if learn_out:
        # `meta l4proto udp` in each rule gives `ct ... proto-src` its type (else "invalid")
        body += _chain("learn_out", None, [f"meta l4proto udp {r}" for r in learn_out])
        body += _chain("learn_in", None, [f"meta l4proto udp {r}" for r in learn_in])
        body += _chain(
            "learn",
            "type filter hook postrouting priority srcnat + 10; policy accept;",
            [
                "meta l4proto udp ct direction original ct status snat jump learn_out",
                "meta l4proto udp ct direction reply ct status dnat jump learn_in",
            ],
        )

    # ---- nothing on the router itself answers unsolicited UDP (no ICMP port unreachable)
    body += _chain(
        "input",
        "type filter hook input priority filter; policy accept;",
        [f"ip daddr {wan_addr} meta l4proto udp ct state new drop"],
    )
    return _table(NAT_TABLE, body, replace)


def udp_blocked_table(wan: str, lans: list[str], *, replace: bool = True) -> str:
    """A proxy-only network: from the LAN only TCP to 80 and 443 leaves; no UDP crosses."""
    lan = _ifnames(lans)
    rules = [
        "ct state established,related accept",
        f'iifname {lan} oifname "{wan}" tcp dport {{ 80, 443 }} accept',
        f'iifname {lan} oifname "{wan}" drop',
        f'iifname "{wan}" oifname {lan} meta l4proto udp drop',
    ]
    body = _chain("forward", "type filter hook forward priority filter; policy accept;", rules)
    return _table(FIREWALL_TABLE, body, replace)
