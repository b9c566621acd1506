"""TCP conversations out of a packet capture, for ``sanschat split --pcap`` and
``sanschat.testing.captured``.

Goal: each TCP connection's two byte streams exactly as the applications saw
them, with each segment's new bytes as one chunk (the chunking a server read).
Plan: dpkt (the ``pcap`` extra) parses pcap and pcapng files over Ethernet,
Linux cooked (SLL, SLL2), BSD loopback and raw IP links, IPv4 and IPv6; each
direction's segments are placed by sequence number relative to the SYN (or to
the lowest one seen, for a capture that starts mid-connection), so reordered
and retransmitted segments count once. A hole (a segment the capture missed)
ends that direction's stream there, and says so: the bytes after it cannot be
framed safely.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

__all__ = ["Conversation", "read_conversations"]

Endpoint = tuple[str, int]

_SYN, _ACK, _MOD, _HALF = 0x02, 0x10, 1 << 32, 1 << 31


@dataclass(frozen=True)
class Conversation:
    """One TCP connection of a capture.

    ``client_chunks`` are the bytes the client sent, one item per segment, in
    stream order (``server_chunks`` likewise); ``client_gap`` / ``server_gap``
    say that the capture missed a segment, and the stream stops before it.
    The client is the side that sent the SYN (without one: the side not on
    the port asked for, else the higher port).
    """

    client: Endpoint
    server: Endpoint
    client_chunks: tuple[bytes, ...] = ()
    server_chunks: tuple[bytes, ...] = ()
    client_gap: bool = False
    server_gap: bool = False

    @property
    def client_bytes(self) -> bytes:
        """Everything the client sent, joined."""
        return b"".join(self.client_chunks)

    @property
    def server_bytes(self) -> bytes:
        """Everything the server sent, joined."""
        return b"".join(self.server_chunks)


@dataclass
class _Direction:
    """One direction's segments, placed by sequence number."""

    base: int | None = None  # the sequence number of the first byte
    segments: list[tuple[int, bytes]] = field(default_factory=list)  # (raw seq, payload)

    def stream(self) -> tuple[tuple[bytes, ...], bool]:
        """The chunks in order, and whether a hole cut the stream short."""
        if not self.segments:
            return (), False
        base = self.base
        if base is None:  # no SYN seen: start at the lowest sequence number
            first = self.segments[0][0]
            base = first + min(_signed(seq - first) for seq, _ in self.segments)
        placed = sorted((_signed(seq - base), data) for seq, data in self.segments)
        chunks: list[bytes] = []
        expected = 0
        for offset, data in placed:
            if offset > expected:
                return tuple(chunks), True
            new = data[expected - offset :]
            if new:
                chunks.append(new)
                expected += len(new)
        return tuple(chunks), False


@dataclass
class _Connection:
    first: Endpoint  # the sender of the first packet seen
    second: Endpoint
    client: Endpoint | None = None  # known from a SYN
    directions: dict[Endpoint, _Direction] = field(default_factory=dict)

    def conversation(self, port: int | None) -> Conversation:
        client = self.client
        if client is None:
            if port is not None and self.first[1] == port:
                client = self.second
            elif port is not None and self.second[1] == port:
                client = self.first
            else:
                client = max(self.first, self.second, key=lambda end: end[1])
        server = self.second if client == self.first else self.first
        sent, sent_gap = self.directions.get(client, _Direction()).stream()
        answered, answered_gap = self.directions.get(server, _Direction()).stream()
        return Conversation(client, server, sent, answered, sent_gap, answered_gap)


def _signed(delta: int) -> int:
    """A sequence-number difference, modulo 2**32, as a signed offset."""
    return (delta + _HALF) % _MOD - _HALF


def _ip_packets(path: str) -> Iterator[Any]:
    """The IP packets (dpkt objects) of a pcap or pcapng file, in capture order."""
    try:
        import dpkt
    except ImportError:
        raise ImportError("reading a capture needs dpkt: pip install 'sanschat[pcap]'", name="dpkt") from None
    with open(path, "rb") as fh:
        reader = _open_reader(dpkt, fh)
        link = reader.datalink()
        for _timestamp, frame in reader:
            packet = _unwrap(dpkt, link, frame)
            if packet is not None:
                yield packet


def _open_reader(dpkt: Any, fh: BinaryIO) -> Any:
    magic = fh.read(4)
    fh.seek(0)
    if magic == b"\x0a\x0d\x0d\x0a":
        return dpkt.pcapng.Reader(fh)
    try:
        return dpkt.pcap.Reader(fh)
    except (ValueError, dpkt.dpkt.NeedData) as error:
        raise ValueError(f"not a pcap or pcapng file ({error})") from None


def _unwrap(dpkt: Any, link: int, frame: bytes) -> Any:
    """The IPv4 or IPv6 packet in a link-layer frame, or None."""
    try:
        if link == dpkt.pcap.DLT_EN10MB:
            packet = dpkt.ethernet.Ethernet(frame).data
        elif link == dpkt.pcap.DLT_LINUX_SLL:
            packet = dpkt.sll.SLL(frame).data
        elif link == getattr(dpkt.pcap, "DLT_LINUX_SLL2", 276):
            packet = dpkt.sll2.SLL2(frame).data
        elif link in (dpkt.pcap.DLT_NULL, dpkt.pcap.DLT_LOOP):
            packet = dpkt.loopback.Loopback(frame).data
        elif link in (dpkt.pcap.DLT_RAW, 12, 14, 101, 228, 229):  # raw IP, by its many numbers
            packet = dpkt.ip6.IP6(frame) if frame[:1] and frame[0] >> 4 == 6 else dpkt.ip.IP(frame)
        else:
            raise ValueError(f"unsupported link type {link}")
    except (dpkt.dpkt.UnpackError, IndexError):
        return None
    return packet if isinstance(packet, (dpkt.ip.IP, dpkt.ip6.IP6)) else None


def read_conversations(path: str, port: int | None = None) -> list[Conversation]:
    """The TCP conversations of the capture at ``path`` (with ``port`` at either
    end, if given), in the order their first packets appear."""
    import dpkt  # (_ip_packets has said how to install it if missing)

    connections: list[_Connection] = []
    current: dict[frozenset[Endpoint], _Connection] = {}
    for ip in _ip_packets(path):
        segment = ip.data
        if not isinstance(segment, dpkt.tcp.TCP):
            continue
        if port is not None and port not in (segment.sport, segment.dport):
            continue
        family = socket.AF_INET6 if isinstance(ip, dpkt.ip6.IP6) else socket.AF_INET
        source = (socket.inet_ntop(family, ip.src), segment.sport)
        target = (socket.inet_ntop(family, ip.dst), segment.dport)
        key = frozenset((source, target))
        connection = current.get(key)
        opening = segment.flags & _SYN and not segment.flags & _ACK
        if connection is None or (opening and any(d.segments for d in connection.directions.values())):
            connection = current[key] = _Connection(source, target)  # a new connection on these ports
            connections.append(connection)
        direction = connection.directions.setdefault(source, _Direction())
        if segment.flags & _SYN:
            direction.base = (segment.seq + 1) % _MOD
            if opening:
                connection.client = source
        if segment.data:
            direction.segments.append((segment.seq, bytes(segment.data)))
    return [connection.conversation(port) for connection in connections]
