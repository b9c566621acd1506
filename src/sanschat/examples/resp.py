"""A Redis-protocol (RESP2) key-value server: PING, ECHO, SET, GET, DEL, INCR[BY].

A command is an array of bulk strings: a line ``*N``, then N times a line
``$len`` and a value of ``len`` bytes followed by CRLF, which
``read_exactly(len, b"\\r\\n")`` reads before lines resume by themselves.
Lines and values have limits of their own. Clients such as redis-py work
against it. Run: ``python -m sanschat.examples.resp --backend asyncio --port 6380``.
"""

from __future__ import annotations

from .. import FrameTooLarge, Handler, MalformedFrame

Store = dict[bytes, bytes]


class RespServer(Handler):
    terminator = b"\r\n"
    max_frame_size = 64 * 1024  # a "*N" or "$len" line, or an inline command
    max_value_size = 512 * 1024 * 1024  # a bulk string, as Redis's proto-max-bulk-len

    def __init__(self, store: Store | None = None) -> None:
        self.store: Store = {} if store is None else store
        self.count = 0  # bulk strings in the command being read
        self.args: list[bytes] = []
        self.in_value = False

    def frame_received(self, data: bytes) -> None:
        if self.in_value:  # a bulk string, read by read_exactly
            self.in_value = False
            self.args.append(data)
            if len(self.args) == self.count:
                self.execute(self.args)
        elif len(self.args) < self.count:  # a "$len" line
            if not (data[:1] == b"$" and data[1:].isdigit()):
                return self.fail(b"expected '$', got %r" % data[:16])
            self.in_value = True
            self.framer.read_exactly(int(data[1:]), b"\r\n")
        elif data[:1] == b"*" and data[1:].isdigit() and int(data[1:]):
            self.count, self.args = int(data[1:]), []
        elif data.strip():  # an inline command, as typed in telnet
            self.execute(data.split())

    def execute(self, args: list[bytes]) -> None:
        name, push, store = args[0].upper(), self.framer.push, self.store
        if name == b"GET" and len(args) == 2:
            value = store.get(args[1])
            push(b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value))
        elif name == b"SET" and len(args) == 3:
            store[args[1]] = args[2]
            push(b"+OK\r\n")
        elif name == b"DEL" and len(args) > 1:
            push(b":%d\r\n" % sum(store.pop(key, None) is not None for key in args[1:]))
        elif (name, len(args)) in ((b"INCR", 2), (b"INCRBY", 3)):
            old, by = store.get(args[1], b"0"), args[2] if len(args) == 3 else b"1"
            if not (old.lstrip(b"-").isdigit() and by.lstrip(b"-").isdigit()):
                return push(b"-ERR value is not an integer or out of range\r\n")
            store[args[1]] = b"%d" % (int(old) + int(by))
            push(b":%s\r\n" % store[args[1]])
        elif name == b"PING":
            push(b"+PONG\r\n" if len(args) == 1 else b"$%d\r\n%s\r\n" % (len(args[1]), args[1]))
        elif name == b"ECHO" and len(args) == 2:
            push(b"$%d\r\n%s\r\n" % (len(args[1]), args[1]))
        else:
            push(b"-ERR unknown command or wrong number of arguments for '%s'\r\n" % name[:32])

    def frame_too_large(self, error: FrameTooLarge) -> None:
        self.fail(b"%s too long" % (b"bulk string" if self.in_value else b"line"))

    def frame_malformed(self, error: MalformedFrame) -> None:
        self.fail(b"a bulk string must end with CRLF")

    def fail(self, why: bytes) -> None:
        self.framer.push(b"-ERR Protocol error: %s\r\n" % why)
        self.framer.close_when_done()


if __name__ == "__main__":
    from ._run import main

    shared: Store = {}
    main(lambda: RespServer(shared), __doc__.splitlines()[0], 6380)
