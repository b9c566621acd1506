"""Packet captures: ``sanschat.testing.captured`` and ``sanschat split --pcap``.

The captures are written here with dpkt, packet by packet, so each test knows
exactly what is on the wire: reordered, retransmitted and missing segments,
sequence numbers that wrap, IPv4 over Ethernet and IPv6 over a raw-IP link,
pcap and pcapng.
"""

from __future__ import annotations

import io
import socket
from pathlib import Path
from typing import Any

import pytest

from sanschat._cli import main
from sanschat.examples.resp import RespServer
from sanschat.testing import Conversation, captured, run_handler

dpkt = pytest.importorskip("dpkt")

SYN, ACK, PSH = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_PUSH
CLIENT, SERVER = ("10.0.0.1", 50000), ("10.0.0.2", 6379)

SET = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\nv\r\nv\r\n"
GET = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
REPLIES = b"+OK\r\n$4\r\nv\r\nv\r\n"


def packet(src: tuple[str, int], dst: tuple[str, int], seq: int, flags: int, data: bytes = b"") -> Any:
    """A TCP segment in an IPv4 or IPv6 packet (by the addresses)."""
    tcp = dpkt.tcp.TCP(sport=src[1], dport=dst[1], seq=seq % (1 << 32), flags=flags, data=data)
    if ":" in src[0]:
        ip = dpkt.ip6.IP6(
            src=socket.inet_pton(socket.AF_INET6, src[0]),
            dst=socket.inet_pton(socket.AF_INET6, dst[0]),
            nxt=dpkt.ip.IP_PROTO_TCP,
            hlim=64,
            data=tcp,
        )
        ip.plen = len(bytes(tcp))
        return ip
    return dpkt.ip.IP(
        src=socket.inet_aton(src[0]), dst=socket.inet_aton(dst[0]), p=dpkt.ip.IP_PROTO_TCP, data=tcp
    )


def ethernet(ip: object) -> bytes:
    kind = dpkt.ethernet.ETH_TYPE_IP6 if isinstance(ip, dpkt.ip6.IP6) else dpkt.ethernet.ETH_TYPE_IP
    return bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=kind, data=ip))


def write(path: Path, frames: list[bytes], link: int = dpkt.pcap.DLT_EN10MB, ng: bool = False) -> Path:
    with path.open("wb") as fh:
        writer = dpkt.pcapng.Writer(fh, linktype=link) if ng else dpkt.pcap.Writer(fh, linktype=link)
        for number, frame in enumerate(frames):
            writer.writepkt(frame, ts=1_700_000_000 + number / 1000)
    return path


def redis_session(client_isn: int = (1 << 32) - 20, server_isn: int = 7000) -> list[bytes]:
    """A RESP session whose client sequence numbers wrap, with its first data
    segment arriving after the second and then again (a retransmission)."""
    c, s = client_isn + 1, server_isn + 1
    first, second = SET[:11], SET[11:] + GET[:5]
    frames = [
        packet(CLIENT, SERVER, client_isn, SYN),
        packet(SERVER, CLIENT, server_isn, SYN | ACK),
        packet(CLIENT, SERVER, c + len(first), PSH | ACK, second),  # ahead of its turn
        packet(CLIENT, SERVER, c, PSH | ACK, first),
        packet(CLIENT, SERVER, c, PSH | ACK, first),  # retransmitted
        packet(SERVER, CLIENT, s, PSH | ACK, REPLIES[:5]),
        packet(CLIENT, SERVER, c + len(first) + len(second), PSH | ACK, GET[5:]),
        packet(SERVER, CLIENT, s + 5, PSH | ACK, REPLIES[5:]),
        # another service on the same hosts, to be filtered by port
        packet(("10.0.0.1", 50001), ("10.0.0.2", 11211), 1, SYN),
        packet(("10.0.0.1", 50001), ("10.0.0.2", 11211), 2, PSH | ACK, b"version\r\n"),
    ]
    return [ethernet(ip) for ip in frames]


def test_a_capture_gives_each_stream_in_order_without_repeats(tmp_path: Path) -> None:
    path = write(tmp_path / "redis.pcap", redis_session())
    talks = captured(str(path))
    assert [(t.client, t.server) for t in talks] == [
        (CLIENT, SERVER),
        (("10.0.0.1", 50001), ("10.0.0.2", 11211)),
    ]
    talk = talks[0]
    assert talk.client_bytes == SET + GET
    assert talk.client_chunks == (SET[:11], SET[11:] + GET[:5], GET[5:])  # as the server read them
    assert talk.server_chunks == (REPLIES[:5], REPLIES[5:])
    assert not (talk.client_gap or talk.server_gap)


def test_a_captured_conversation_is_a_regression_test_of_a_handler(tmp_path: Path) -> None:
    path = write(tmp_path / "redis.pcap", redis_session())
    for talk in captured(str(path), port=6379):
        transcript = run_handler(RespServer, talk.client_chunks)
        assert transcript.output == talk.server_bytes


def test_ipv6_on_a_raw_link_without_the_handshake_and_with_a_hole(tmp_path: Path) -> None:
    client, server = ("2001:db8::1", 41000), ("2001:db8::2", 80)
    ips = [
        packet(client, server, 5000, PSH | ACK, b"GET / HTTP/1.1\r\n"),  # the capture starts here
        packet(server, client, 900, PSH | ACK, b"HTTP/1.1 200 OK\r\n"),
        packet(server, client, 900 + 17 + 10, PSH | ACK, b"after a hole"),  # 10 bytes were never seen
        packet(client, server, 4990, PSH | ACK, b"0123456789"),  # earlier bytes, captured late
    ]
    path = write(tmp_path / "v6.pcapng", [bytes(ip) for ip in ips], link=dpkt.pcap.DLT_RAW, ng=True)
    [talk] = captured(str(path), port=80)
    assert (talk.client, talk.server) == (client, server)  # by the port asked for
    assert talk.client_bytes == b"0123456789GET / HTTP/1.1\r\n"
    assert talk.server_bytes == b"HTTP/1.1 200 OK\r\n"
    assert talk.server_gap and not talk.client_gap


def test_split_frames_each_direction_of_each_connection(tmp_path: Path) -> None:
    path = write(tmp_path / "redis.pcap", redis_session())
    out, err = io.StringIO(), io.StringIO()
    assert main(["split", "--pcap", str(path), "--port", "6379"], out, err) == 0
    assert out.getvalue().splitlines() == [
        f"# connection 1, 10.0.0.1:50000 -> 10.0.0.2:6379: {len(SET + GET)} bytes",
        *"*3 $3 SET $1 k $4 v v *2 $3 GET $1 k".split(" "),
        f"# connection 1, 10.0.0.2:6379 -> 10.0.0.1:50000: {len(REPLIES)} bytes",
        "+OK",
        "$4",
        "v",
        "v",
    ]
    assert err.getvalue().count("frames") == 2


def test_split_of_a_capture_with_a_hole_says_where_it_stops(tmp_path: Path) -> None:
    client, server = ("10.1.1.1", 1234), ("10.1.1.2", 25)
    ips = [packet(client, server, 1, SYN), packet(client, server, 2, PSH | ACK, b"HELO a\r\n")]
    ips.append(packet(client, server, 20, PSH | ACK, b"lost before\r\n"))
    path = write(tmp_path / "smtp.pcap", [ethernet(ip) for ip in ips])
    out, err = io.StringIO(), io.StringIO()
    assert main(["split", "--pcap", str(path)], out, err) == 0
    assert out.getvalue().splitlines()[:2] == [
        "# connection 1, 10.1.1.1:1234 -> 10.1.1.2:25: 8 bytes, then a segment the capture missed",
        "HELO a",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pcap", "/no/such.pcap"], "cannot read /no/such.pcap"),
        (["--port", "80"], "--port goes with --pcap"),
    ],
)
def test_bad_capture_arguments_give_one_line_and_status_2(args: list[str], message: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["split", *args], out, err) == 2
    assert message in err.getvalue() and err.getvalue().count("\n") == 1


def test_a_file_that_is_not_a_capture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"just some text, not a capture\n")
    out, err = io.StringIO(), io.StringIO()
    assert main(["split", "--pcap", str(path)], out, err) == 2
    assert "not a pcap or pcapng file" in err.getvalue()


def test_conversation_joins_its_chunks() -> None:
    talk = Conversation(CLIENT, SERVER, (b"a", b"bc"), (b"d",))
    assert (talk.client_bytes, talk.server_bytes) == (b"abc", b"d")
