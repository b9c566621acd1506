"""A memcached text-protocol server: set, add, get (several keys), delete.

A storage command is a line ``set <key> <flags> <exptime> <bytes> [noreply]``
followed by a data block of ``<bytes>`` bytes and CRLF, which
``read_exactly(bytes, b"\\r\\n")`` reads before lines resume by themselves.
Clients such as pymemcache work against it (expiry times are accepted, not
enforced). Run: ``python -m sanschat.examples.memcached --backend trio --port 11212``.
"""

from __future__ import annotations

from .. import FrameTooLarge, Handler, MalformedFrame

Store = dict[bytes, tuple[bytes, bytes]]  # key: (flags, data)


class MemcachedServer(Handler):
    terminator = b"\r\n"
    max_frame_size = 2048  # a command line (keys are at most 250 bytes)
    max_value_size = 1024 * 1024  # memcached's default item size limit

    def __init__(self, store: Store | None = None) -> None:
        self.store: Store = {} if store is None else store
        self.storing: list[bytes] | None = None  # the command whose data block comes next

    def frame_received(self, data: bytes) -> None:
        if self.storing is not None:
            command, key, flags, *_, noreply = self.storing
            self.storing = None
            stored = command == b"set" or key not in self.store
            if stored:
                self.store[key] = (flags, data)
            if noreply != b"noreply":
                self.framer.push(b"STORED\r\n" if stored else b"NOT_STORED\r\n")
            return
        command, *args = data.split()
        if command in (b"set", b"add") and len(args) in (4, 5) and args[3].isdigit():
            self.storing = [command, *args[:3], args[4] if len(args) == 5 else b""]
            self.framer.read_exactly(int(args[3]), b"\r\n")
        elif command in (b"get", b"gets") and args:
            for key in args:
                if key in self.store:
                    flags, value = self.store[key]
                    self.framer.push(b"VALUE %s %s %d\r\n%s\r\n" % (key, flags, len(value), value))
            self.framer.push(b"END\r\n")
        elif command == b"delete" and args:
            found = self.store.pop(args[0], None) is not None
            if args[-1] != b"noreply":
                self.framer.push(b"DELETED\r\n" if found else b"NOT_FOUND\r\n")
        elif command == b"version":
            self.framer.push(b"VERSION sanschat-example\r\n")
        elif command == b"quit":
            self.framer.close_when_done()
        else:
            self.framer.push(b"ERROR\r\n")

    def frame_too_large(self, error: FrameTooLarge) -> None:
        # The refused data block is skipped whole; a long line is answered and closed.
        self.framer.push(b"SERVER_ERROR object too large for cache\r\n")
        if self.storing is None:
            self.framer.close_when_done()
        self.storing = None

    def frame_malformed(self, error: MalformedFrame) -> None:
        self.framer.push(b"CLIENT_ERROR bad data chunk\r\n")
        self.framer.close_when_done()


if __name__ == "__main__":
    from ._run import main

    shared: Store = {}
    main(lambda: MemcachedServer(shared), __doc__.splitlines()[0], 11212)
