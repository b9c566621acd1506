"""A multi-user line chat server as one sans-IO protocol, under any loop.

Commands: ``/nick NAME`` to join, then any line is said to the room;
``/quit`` to leave. Lines are capped at 1 KiB: a longer one is refused and
skipped, and the connection goes on. A member whose output is backed up
(it does not read) misses lines instead of growing the server's memory.
Run: ``python -m sanschat.examples.chat --backend asyncio --port 8025``.
"""

from __future__ import annotations

from .. import Framer, FrameTooLarge, Handler


class Room:
    """Who is here, by nickname."""

    def __init__(self) -> None:
        self.members: dict[bytes, ChatUser] = {}

    def say(self, line: bytes, sender: ChatUser | None = None) -> None:
        for member in self.members.values():
            if member is not sender:
                member.send_line(line)


class ChatUser(Handler):
    max_frame_size = 1024

    def __init__(self, room: Room) -> None:
        self.room = room
        self.nick: bytes | None = None
        self.missed = 0

    def connection_made(self, framer: Framer) -> None:
        super().connection_made(framer)
        self.send_line(b"* welcome; /nick NAME to join")

    def send_line(self, line: bytes) -> None:
        if self.framer.closing:
            return
        if self.framer.writing_paused:
            self.missed += 1  # bounded memory beats a perfect transcript
            return
        self.framer.push(line + b"\r\n")

    def frame_received(self, line: bytes) -> None:
        if line.startswith(b"/nick "):
            self.join(line[6:].strip())
        elif line == b"/quit":
            self.send_line(b"* bye")
            self.leave()
            self.framer.close_when_done()
        elif self.nick is None:
            self.send_line(b"* /nick NAME first")
        else:
            self.room.say(b"<%s> %s" % (self.nick, line), sender=self)

    def join(self, nick: bytes) -> None:
        if not nick or nick in self.room.members:
            self.send_line(b"* that name is taken or empty")
            return
        self.leave()
        self.nick = nick
        self.room.members[nick] = self
        self.send_line(b"* you are %s; %d here" % (nick, len(self.room.members)))
        self.room.say(b"* %s joined" % nick, sender=self)

    def leave(self) -> None:
        if self.nick is not None and self.room.members.get(self.nick) is self:
            del self.room.members[self.nick]
            self.room.say(b"* %s left" % self.nick)
        self.nick = None

    def frame_too_large(self, error: FrameTooLarge) -> None:
        self.send_line(b"* line too long, skipped")

    def end_received(self, data: bytes) -> None:
        self.leave()
        self.framer.close_when_done()

    def connection_lost(self, error: BaseException | None) -> None:
        self.leave()


if __name__ == "__main__":
    from ._run import main

    room = Room()
    main(lambda: ChatUser(room), __doc__.splitlines()[0], 8025)
