"""The SMTP submission example (sanschat.examples.smtp) under every binding,
run as its users run it (``python -m sanschat.examples.smtp``), against the
standard library's ``smtplib`` and against a client that tries to inject a
command in clear behind STARTTLS. Certificates come from trustme; verification
is on everywhere."""

from __future__ import annotations

import base64
import email.message
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import serving

LOOPS = ["select", "asyncio", "trio", "anyio", "socket", "twisted"]
PATIENCE = 30.0


@pytest.fixture(params=LOOPS)
def smtp(request: pytest.FixtureRequest, pem: Path, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    maildir = tmp_path / "mail"
    args = ["-m", "sanschat.examples.smtp", "--backend", request.param, "--port", "0"]
    args += ["--tls-cert", str(pem), "--user", "alice:s3cret", "--maildir", str(maildir)]
    with serving(*args) as port:
        yield port, maildir


def delivered(maildir: Path, count: int) -> list[bytes]:
    """The messages written to ``maildir``, once there are ``count`` of them."""
    deadline = time.monotonic() + PATIENCE
    while True:
        files = sorted(maildir.glob("*.eml")) if maildir.exists() else []
        if len(files) >= count or time.monotonic() > deadline:
            return [file.read_bytes() for file in files]
        time.sleep(0.01)


def big_message() -> email.message.EmailMessage:
    message = email.message.EmailMessage()
    message["From"] = "alice@example.org"
    message["To"] = "bob@example.org"
    message["Subject"] = "a megabyte"
    # Lines that begin with a dot (stuffed by smtplib, unstuffed by the server),
    # a lone dot, and a line that looks like the end: all must arrive as sent.
    lines = [f"line {i} " + "x" * 60 for i in range(14_000)]
    lines[10:13] = [".", "..leading dots", ".end?"]
    message.set_content("\n".join(lines) + "\n")
    return message


def test_smtplib_starttls_login_and_a_megabyte(
    smtp: tuple[int, Path], client_context: ssl.SSLContext
) -> None:
    port, maildir = smtp
    message = big_message()
    with smtplib.SMTP("127.0.0.1", port, timeout=PATIENCE) as client:
        client.ehlo("client.example.org")
        assert client.has_extn("starttls") and client.has_extn("pipelining")
        assert not client.has_extn("auth")  # AUTH only under TLS
        client.starttls(context=client_context)
        client.ehlo("client.example.org")
        assert client.has_extn("auth") and "PLAIN" in client.esmtp_features["auth"]
        assert not client.has_extn("starttls")
        client.login("alice", "s3cret")
        assert client.send_message(message) == {}
        assert client.send_message(message, to_addrs=["carol@example.org", "dave@example.org"]) == {}
    mails = delivered(maildir, 2)
    assert len(mails) == 2
    body = message.as_bytes().replace(b"\n", b"\r\n")
    assert len(body) > 1_000_000
    assert mails[0].endswith(body) and mails[1].endswith(body)
    assert b"X-Envelope-To: <carol@example.org>, <dave@example.org>" in mails[1]


def test_wrong_password_and_auth_in_clear_are_refused(
    smtp: tuple[int, Path], client_context: ssl.SSLContext
) -> None:
    port, _maildir = smtp
    with smtplib.SMTP("127.0.0.1", port, timeout=PATIENCE) as client:
        client.ehlo("x")
        code, _ = client.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0alice\0s3cret").decode())
        assert code == 538  # encryption required
        client.starttls(context=client_context)
        client.ehlo("x")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("alice", "wrong")
        code, _ = client.docmd("MAIL", "FROM:<alice@example.org>")
        assert code == 530  # not authenticated


class Raw:
    """A line-oriented SMTP client on a plain socket, upgradable to TLS."""

    def __init__(self, port: int) -> None:
        self.sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def replies(self, count: int) -> list[bytes]:
        """The next ``count`` complete replies (multi-line ones joined)."""
        got: list[bytes] = []
        current = b""
        while len(got) < count:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                assert chunk, f"closed early; got {got!r}"
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            current += line + b"\r\n"
            if line[3:4] != b"-":
                got.append(current)
                current = b""
        return got

    def upgrade(self, context: ssl.SSLContext) -> None:
        assert self.buffer == b"", "bytes read in clear after the 220 answer"
        self.sock = context.wrap_socket(self.sock, server_hostname="localhost")

    def close(self) -> None:
        self.sock.close()


def test_a_command_injected_in_clear_behind_starttls_is_never_run(
    smtp: tuple[int, Path], client_context: ssl.SSLContext
) -> None:
    port, maildir = smtp
    raw = Raw(port)
    try:
        assert raw.replies(1)[0].startswith(b"220 ")
        # One write: STARTTLS and, in clear behind it, a whole transaction.
        injected = b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
        raw.send(b"EHLO x\r\nSTARTTLS\r\n" + injected)
        ehlo, ready = raw.replies(2)
        assert b"STARTTLS" in ehlo and ready.startswith(b"220 ")
        raw.upgrade(client_context)  # nothing more came in clear: no answer to the injection
        raw.send(b"EHLO x\r\nRCPT TO:<victim@example.org>\r\n")
        ehlo, rcpt = raw.replies(2)
        assert rcpt.startswith(b"503 ")  # the injected MAIL never happened
        raw.send(b"QUIT\r\n")
        assert raw.replies(1)[0].startswith(b"221 ")
    finally:
        raw.close()
    assert delivered(maildir, 0) == []


def test_a_pipelined_transaction_under_tls(smtp: tuple[int, Path], client_context: ssl.SSLContext) -> None:
    """PIPELINING: a whole group in one write, DATA last, the message and QUIT in another."""
    port, maildir = smtp
    raw = Raw(port)
    try:
        raw.replies(1)
        raw.send(b"EHLO x\r\nSTARTTLS\r\n")
        raw.replies(2)
        raw.upgrade(client_context)
        plain = base64.b64encode(b"\0alice\0s3cret")
        raw.send(
            b"EHLO x\r\nAUTH PLAIN " + plain + b"\r\nMAIL FROM:<alice@example.org> SIZE=40\r\n"
            b"RCPT TO:<bob@example.org>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n"
        )
        codes = [reply[:3] for reply in raw.replies(6)]
        assert codes == [b"250", b"235", b"250", b"250", b"250", b"354"]
        raw.send(b"Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\nRSET\r\nQUIT\r\n")
        assert [reply[:3] for reply in raw.replies(3)] == [b"250", b"250", b"221"]
    finally:
        raw.close()
    [mail] = delivered(maildir, 1)
    assert mail.endswith(b"Subject: hi\r\n\r\n.dot\r\nbody\r\n")


def test_a_message_over_the_size_limit_is_refused(
    smtp: tuple[int, Path], client_context: ssl.SSLContext
) -> None:
    port, _maildir = smtp
    with smtplib.SMTP("127.0.0.1", port, timeout=PATIENCE) as client:
        client.starttls(context=client_context)
        client.login("alice", "s3cret")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("a@example.org", ["b@example.org"], b"x", mail_options=["SIZE=99999999"])
        assert refused.value.smtp_code == 552
