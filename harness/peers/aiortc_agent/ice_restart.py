"""ICE restart for aioice and aiortc (RFC 8445 section 9, RFC 8839 section 4.4.1.1.1).

aioice 0.13 runs ICE once per Connection and aiortc 1.16 never changes a
transport's credentials, so neither side of a restart works: checks with the
new ufrag get 401. This module adds restarts without touching the layers
above ICE: the same Connection object starts a new *generation* (new
ufrag/pwd, new candidates, empty check list) while the pair nominated in the
previous generation keeps carrying DTLS/SRTP/SCTP until a new pair is
nominated. The DTLS transport never notices, so there is no new handshake.

Kept self-contained so it could be proposed upstream: `RestartableConnection`
belongs in aioice.Connection, the two RTC* subclasses in aiortc. Until then,
`install()` makes RTCPeerConnection build these classes, and
`restart_local()` / `remote_restarts()` are the calls a peer connection would
make from createOffer(iceRestart) / setRemoteDescription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import aiortc.rtcpeerconnection
from aioice import Connection
from aioice.ice import MAX_EARLY_CHECKS, CandidatePair, StunProtocol
from aioice.utils import random_string
from aiortc import RTCPeerConnection
from aiortc.exceptions import InvalidStateError
from aiortc.rtcconfiguration import RTCIceServer, RTCIceTransportPolicy
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceParameters, RTCIceTransport

logger = logging.getLogger(__name__)

#: How long the previous generation's sockets and TURN allocations stay open
#: after a new pair is nominated, for packets the peer sent before it switched.
RETIRE_GRACE = 2.0


class RestartableConnection(Connection):
    """An aioice Connection that can start a new ICE generation (an ICE restart)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.generation = 0
        #: Called with the newly nominated pair of a component (selected pair changes).
        self.on_selected_pair: Callable[[CandidatePair], None] | None = None
        self._all_components = set(self._components)
        self._previous_nominated: dict[int, CandidatePair] = {}
        self._previous_protocols: list[StunProtocol] = []
        self._connect_idle = asyncio.Event()
        self._connect_idle.set()
        self._retire_task: asyncio.Task[None] | None = None

    def selected_pair(self, component: int = 1) -> CandidatePair | None:
        """The pair carrying data: this generation's nominated one, else the previous one."""
        return self._nominated.get(component) or self._previous_nominated.get(component)

    async def restart(
        self, local_username: str | None = None, local_password: str | None = None
    ) -> None:
        """Start a new generation: new local credentials, no remote ones, no candidates.

        Call gather_candidates(), set the remote credentials and candidates, then
        connect() again, exactly as for a new Connection. Data keeps flowing on
        the previously selected pair meanwhile.
        """
        self.generation += 1  # first: a connect() aborted below must see it is outdated
        await self._abort_connect()
        if self._query_consent_task is not None:
            self._query_consent_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._query_consent_task
            self._query_consent_task = None
        tasks = [p.task for p in self._check_list if p.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        if self._retire_task is not None:
            self._retire_task.cancel()
            self._retire_task = None

        # The old pair carries data until the new generation nominates one.
        if self._nominated:
            self._previous_nominated = dict(self._nominated)
        self._nominated = {}
        self._previous_protocols += self._protocols
        self._protocols = []

        self._local_username = local_username or random_string(4)
        self._local_password = local_password or random_string(22)
        self.remote_username = None
        self.remote_password = None
        self._components = set(self._all_components)
        self._check_list = []
        self._check_list_done = False
        self._check_list_state = asyncio.Queue()
        self._early_checks = deque(maxlen=MAX_EARLY_CHECKS)
        self._early_checks_done = False
        self._local_candidates = []
        self._local_candidates_end = False
        self._local_candidates_start = False
        self._nominating = set()
        self._remote_candidates = []
        self._remote_candidates_end = False
        logger.info("%s ICE restart: generation %d", self, self.generation)

    async def connect(self) -> None:
        self._connect_idle.clear()
        try:
            await super().connect()
        finally:
            self._connect_idle.set()
        if self._previous_protocols:
            self._retire_task = asyncio.create_task(self._retire_previous())

    async def close(self) -> None:
        if self._retire_task is not None:
            self._retire_task.cancel()
        self._previous_nominated.clear()
        for protocol in self._previous_protocols:
            await protocol.close()
        self._previous_protocols.clear()
        await super().close()

    async def sendto(self, data: bytes, component: int) -> None:
        pair = self.selected_pair(component)
        if pair is None:
            raise ConnectionError("Cannot send data, not connected")
        await pair.protocol.send_data(data, pair.remote_addr)

    async def recvfrom(self) -> tuple[bytes, int]:
        if not self._nominated and not self._previous_nominated:
            raise ConnectionError("Cannot receive data, not connected")
        result = await self._queue.get()
        if result is None:
            raise ConnectionError("Connection lost while receiving data")
        return result

    def check_complete(self, pair: CandidatePair) -> None:
        before = self._nominated.get(pair.component)
        super().check_complete(pair)
        after = self._nominated.get(pair.component)
        if after is not None and after is not before and self.on_selected_pair is not None:
            self.on_selected_pair(after)

    async def _abort_connect(self) -> None:
        """End a connect() still running for the old generation, so it cannot touch the new one."""
        if self._connect_idle.is_set():
            return
        if not self._check_list_done:
            self._check_list_state.put_nowait(2)  # aioice.ice.ICE_FAILED
            self._check_list_done = True
        await self._connect_idle.wait()

    async def _retire_previous(self) -> None:
        await asyncio.sleep(RETIRE_GRACE)
        self._previous_nominated.clear()
        protocols, self._previous_protocols = self._previous_protocols, []
        for protocol in protocols:
            await protocol.close()


class RestartableIceGatherer(RTCIceGatherer):
    """RTCIceGatherer whose Connection can restart and gather a new generation."""

    def __init__(
        self,
        iceServers: list[RTCIceServer] | None = None,
        iceTransportPolicy: RTCIceTransportPolicy = RTCIceTransportPolicy.ALL,
        local_username: str | None = None,
        local_password: str | None = None,
    ) -> None:
        super().__init__(iceServers, iceTransportPolicy, local_username, local_password)
        base = self._connection
        self._connection = RestartableConnection(
            ice_controlling=False,
            stun_server=base.stun_server,
            turn_server=base.turn_server,
            turn_username=base.turn_username,
            turn_password=base.turn_password,
            turn_ssl=base.turn_ssl,
            turn_transport=base.turn_transport,
            transport_policy=base._transport_policy,
            local_username=base.local_username,
            local_password=base.local_password,
        )

    async def restart(self, ice_controlling: bool) -> None:
        """New credentials and a new gathering; the role follows the new offer/answer."""
        connection: RestartableConnection = self._connection  # type: ignore[assignment]
        await connection.restart()
        connection.ice_controlling = ice_controlling
        self._remote_candidates_end = False
        self._RTCIceGatherer__state = "new"  # gather() only runs from "new"
        await self.gather()


class RestartableIceTransport(RTCIceTransport):
    """RTCIceTransport whose start() runs the checks of each new ICE generation.

    aiortc calls start() after every description with the remote parameters it
    holds; parameters of an earlier generation are ignored, new ones (after a
    restart) start the checks of the current generation.
    """

    def __init__(self, gatherer: RTCIceGatherer) -> None:
        super().__init__(gatherer)
        self._remote_key: tuple[str | None, str | None] | None = None
        self._done = asyncio.Event()

    @property
    def connection(self) -> RestartableConnection:
        return self._connection  # type: ignore[return-value]

    async def start(self, remoteParameters: RTCIceParameters) -> None:
        if self.state == "closed":
            raise InvalidStateError("RTCIceTransport is closed")
        key = (remoteParameters.usernameFragment, remoteParameters.password)
        if key == self._remote_key:
            await self._done.wait()
            return
        connection = self.connection
        if self._remote_key is not None and connection.remote_username is not None:
            raise InvalidStateError(
                "remote ICE credentials changed without a local ICE restart "
                "(call restart_local() before applying the remote description)"
            )
        first = self._remote_key is None
        self._remote_key = key
        self._done = done = asyncio.Event()
        generation = connection.generation
        if self._RTCIceTransport__monitor_task is None:
            self._RTCIceTransport__monitor_task = asyncio.ensure_future(self._monitor())
        if first:
            self._RTCIceTransport__setState("checking")
        connection.remote_is_lite = remoteParameters.iceLite
        connection.remote_username = remoteParameters.usernameFragment
        connection.remote_password = remoteParameters.password
        try:
            await connection.connect()
        except ConnectionError:
            if connection.generation == generation and self.state != "closed":
                self._RTCIceTransport__setState("failed")
        else:
            self._RTCIceTransport__setState("completed")
        finally:
            done.set()


def install() -> None:
    """Make every RTCPeerConnection built from now on use the restartable ICE classes."""
    aiortc.rtcpeerconnection.RTCIceGatherer = RestartableIceGatherer  # type: ignore[misc]
    aiortc.rtcpeerconnection.RTCIceTransport = RestartableIceTransport  # type: ignore[misc]


def ice_transports(pc: RTCPeerConnection) -> list[RestartableIceTransport]:
    """The distinct ICE transports of a peer connection (one with BUNDLE)."""
    found: list[RestartableIceTransport] = []
    dtls = [t.receiver.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        dtls.append(pc.sctp.transport)
    for d in dtls:
        ice = d.transport
        if not isinstance(ice, RestartableIceTransport):
            raise TypeError("call ice_restart.install() before creating the RTCPeerConnection")
        if ice not in found and ice.state != "closed":
            found.append(ice)
    return found


async def restart_local(pc: RTCPeerConnection, offerer: bool) -> None:
    """Restart ICE on our side: before createOffer (offerer) or before applying a restart offer."""
    await asyncio.gather(
        *(t.iceGatherer.restart(ice_controlling=offerer) for t in ice_transports(pc))
    )


def remote_restarts(pc: RTCPeerConnection, remote_ufrags: set[str]) -> bool:
    """Whether a remote description with these ufrags restarts ICE (RFC 8839 4.4.1.1.1)."""
    for t in ice_transports(pc):
        known = t._remote_key[0] if t._remote_key else None
        if known is not None and known not in remote_ufrags:
            return True
    return False
