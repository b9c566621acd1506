"""An SMTP submission server (RFC 6409): EHLO with PIPELINING, SIZE and
STARTTLS; AUTH PLAIN, offered and accepted only under TLS; MAIL, RCPT, DATA
with dot-unstuffing; RSET, NOOP, QUIT.

The upgrade is one call, ``self.start_tls(context)``, after the "220" answer:
that answer goes out in clear, and anything the client pipelined in clear
behind STARTTLS is dropped by sanschat, never read as a command (RFC 3207
section 4.2; CVE-2011-0411). After it the session starts afresh: the client
must say EHLO again. Clients such as ``smtplib`` work against it (``starttls``,
``login``, ``send_message``). Run::

    python -m sanschat.examples.smtp --backend asyncio --port 8587 \\
        --tls-cert cert.pem --tls-key key.pem --user alice:secret --maildir mail/
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
from collections.abc import Callable

from .. import FrameTooLarge, Handler

#: A delivered message: the envelope sender, the recipients, the data.
Message = tuple[bytes, list[bytes], bytes]

MAX_MESSAGE = 10 * 1024 * 1024  # the SIZE we announce


class SmtpServer(Handler):
    """One SMTP session. ``tls`` is the server context STARTTLS upgrades with
    (None: no STARTTLS); ``users`` maps user names to passwords for AUTH PLAIN;
    ``deliver`` gets each accepted message."""

    terminator = b"\r\n"
    max_frame_size = 4096  # a command line (RFC 5321: 512), or a line of a message

    def __init__(
        self,
        tls: ssl.SSLContext | None,
        users: dict[str, str],
        deliver: Callable[[Message], None],
        hostname: str = "localhost",
    ) -> None:
        self.tls_context = tls
        self.users = users
        self.deliver = deliver
        self.hostname = hostname.encode()
        self.secure = False
        self.authenticated = False
        self.greeted = False
        self.awaiting_auth = False
        self.in_data = False
        self._reset()

    def _reset(self) -> None:
        self.sender: bytes | None = None
        self.recipients: list[bytes] = []
        self.message: list[bytes] = []
        self.size = 0

    def reply(self, line: bytes) -> None:
        self.framer.push(line + b"\r\n")

    # ------------------------------------------------------------ session

    def connection_made(self, framer: object) -> None:
        super().connection_made(framer)  # type: ignore[arg-type]
        if self.connection_info.tls_info is not None or self.connection_info.tls is not None:
            self.secure = True
        self.reply(b"220 %s ESMTP sanschat" % self.hostname)

    def tls_started(self) -> None:
        self.secure = True

    def frame_too_large(self, error: FrameTooLarge) -> None:
        if self.in_data:
            self.size = MAX_MESSAGE + 1  # refused at the final dot
        else:
            self.reply(b"500 5.5.2 line too long")

    def frame_received(self, line: bytes) -> None:
        if self.in_data:
            return self.data_line(line)
        if self.awaiting_auth:
            self.awaiting_auth = False
            return self.auth_plain(line)
        verb, _, argument = line.partition(b" ")
        command = self.COMMANDS.get(verb.upper())
        if command is None:
            return self.reply(b"500 5.5.2 command not recognized")
        command(self, argument.strip())

    # ----------------------------------------------------------- commands

    def ehlo(self, argument: bytes) -> None:
        if not argument:
            return self.reply(b"501 5.5.4 EHLO needs a domain")
        self.greeted = True
        self._reset()
        lines = [self.hostname, b"PIPELINING", b"SIZE %d" % MAX_MESSAGE, b"8BITMIME"]
        if self.tls_context is not None and not self.secure:
            lines.append(b"STARTTLS")
        if self.secure:
            lines.append(b"AUTH PLAIN")
        for line in lines[:-1]:
            self.reply(b"250-" + line)
        self.reply(b"250 " + lines[-1])

    def helo(self, argument: bytes) -> None:
        self.greeted = True
        self._reset()
        self.reply(b"250 " + self.hostname)

    def starttls(self, argument: bytes) -> None:
        if self.secure:
            return self.reply(b"503 5.5.1 TLS already active")
        if self.tls_context is None:
            return self.reply(b"502 5.5.1 STARTTLS not available")
        self.reply(b"220 2.0.0 ready to start TLS")  # in clear: queued before the upgrade
        self.start_tls(self.tls_context)
        # RFC 3207 4.2: the session starts afresh; the client says EHLO again.
        self.greeted = self.authenticated = False
        self._reset()

    def auth(self, argument: bytes) -> None:
        mechanism, _, initial = argument.partition(b" ")
        if not self.secure:
            return self.reply(b"538 5.7.11 encryption required for AUTH")
        if self.authenticated:
            return self.reply(b"503 5.5.1 already authenticated")
        if mechanism.upper() != b"PLAIN":
            return self.reply(b"504 5.5.4 only AUTH PLAIN")
        if not initial:
            self.awaiting_auth = True
            return self.reply(b"334 ")
        self.auth_plain(initial)

    def auth_plain(self, response: bytes) -> None:
        if response == b"*":
            return self.reply(b"501 5.0.0 AUTH cancelled")
        try:
            _authzid, user, password = base64.b64decode(response, validate=True).split(b"\0")
        except (binascii.Error, ValueError):
            return self.reply(b"501 5.5.2 bad AUTH PLAIN response")
        expected = self.users.get(user.decode("utf-8", "replace"))
        if expected is None or expected.encode() != password:
            return self.reply(b"535 5.7.8 authentication credentials invalid")
        self.authenticated = True
        self.reply(b"235 2.7.0 authentication successful")

    def mail(self, argument: bytes) -> None:
        if not self.greeted:
            return self.reply(b"503 5.5.1 say EHLO first")
        if not self.authenticated:
            return self.reply(b"530 5.7.0 authentication required")
        if self.sender is not None:
            return self.reply(b"503 5.5.1 MAIL already given")
        if not argument.upper().startswith(b"FROM:"):
            return self.reply(b"501 5.5.4 syntax: MAIL FROM:<address>")
        address, *parameters = argument[5:].strip().split()
        for parameter in parameters:
            name, _, value = parameter.partition(b"=")
            if name.upper() == b"SIZE" and value.isdigit() and int(value) > MAX_MESSAGE:
                return self.reply(b"552 5.3.4 message too big")
        self.sender = address
        self.reply(b"250 2.1.0 OK")

    def rcpt(self, argument: bytes) -> None:
        if self.sender is None:
            return self.reply(b"503 5.5.1 need MAIL first")
        if not argument.upper().startswith(b"TO:"):
            return self.reply(b"501 5.5.4 syntax: RCPT TO:<address>")
        self.recipients.append(argument[3:].strip())
        self.reply(b"250 2.1.5 OK")

    def data(self, argument: bytes) -> None:
        if not self.recipients:
            return self.reply(b"503 5.5.1 need RCPT first" if self.sender else b"503 5.5.1 need MAIL first")
        self.in_data = True
        self.reply(b"354 end data with <CR><LF>.<CR><LF>")

    def data_line(self, line: bytes) -> None:
        if line == b".":
            self.in_data = False
            if self.size > MAX_MESSAGE:
                self.reply(b"552 5.3.4 message too big")
            else:
                assert self.sender is not None
                self.deliver((self.sender, self.recipients, b"".join(self.message)))
                self.reply(b"250 2.0.0 OK: queued")
            return self._reset()
        if line.startswith(b"."):
            line = line[1:]  # dot-unstuffing (RFC 5321 4.5.2)
        self.size += len(line) + 2
        if self.size <= MAX_MESSAGE:
            self.message.append(line + b"\r\n")

    def rset(self, argument: bytes) -> None:
        self._reset()
        self.reply(b"250 2.0.0 OK")

    def noop(self, argument: bytes) -> None:
        self.reply(b"250 2.0.0 OK")

    def quit(self, argument: bytes) -> None:
        self.reply(b"221 2.0.0 bye")
        self.framer.close_when_done()

    COMMANDS: dict[bytes, Callable[[SmtpServer, bytes], None]] = {
        b"EHLO": ehlo,
        b"HELO": helo,
        b"STARTTLS": starttls,
        b"AUTH": auth,
        b"MAIL": mail,
        b"RCPT": rcpt,
        b"DATA": data,
        b"RSET": rset,
        b"NOOP": noop,
        b"QUIT": quit,
    }


def maildir_delivery(directory: str) -> Callable[[Message], None]:
    """Write each message to a file of its own in ``directory`` (made if missing)."""
    os.makedirs(directory, exist_ok=True)
    count = 0

    def deliver(message: Message) -> None:
        nonlocal count
        count += 1
        sender, recipients, data = message
        envelope = b"X-Envelope-From: %s\r\nX-Envelope-To: %s\r\n" % (sender, b", ".join(recipients))
        path = os.path.join(directory, f"{os.getpid()}-{count}.eml")
        with open(path + ".tmp", "wb") as file:
            file.write(envelope + data)
        os.replace(path + ".tmp", path)  # whole, or not there

    return deliver


if __name__ == "__main__":
    import argparse

    from ._run import add_tls_arguments, main, server_context

    parser = argparse.ArgumentParser(add_help=False)
    add_tls_arguments(parser)
    parser.add_argument("--user", action="append", default=[], help="NAME:PASSWORD (repeatable)")
    parser.add_argument("--maildir", default="mail", help="where accepted messages are written")
    options, _rest = parser.parse_known_args()
    context = server_context(options)
    users = dict(user.split(":", 1) for user in options.user)
    deliver = maildir_delivery(options.maildir)
    main(
        lambda: SmtpServer(context, users, deliver),
        "An SMTP submission server with STARTTLS",
        8587,
        extra=parser,
        first_byte_tls=False,
    )
