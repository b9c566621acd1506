"""Example protocols, each written once as a :class:`sanschat.Handler` and run
unchanged under every binding (select, asyncio, trio, anyio, socket, twisted).

* :mod:`sanschat.examples.http`: the asynchat documentation's HTTP request
  reader (headers whole, then a Content-Length body, pipelining).
* :mod:`sanschat.examples.chat`: a multi-user line chat.
* :mod:`sanschat.examples.resp`: a Redis-protocol key-value server.
* :mod:`sanschat.examples.memcached`: memcached's text protocol.

Run one with ``python -m sanschat.examples.resp --backend trio --port 6380``;
``python -m sanschat chat`` runs the chat too.
"""
