"""Example protocols, each written once as a :class:`sanschat.Handler` and run
unchanged under the select, asyncio and trio bindings.

* :mod:`sanschat.examples.http`: the asynchat documentation's HTTP request
  reader (headers whole, then a Content-Length body, pipelining).
* :mod:`sanschat.examples.chat`: a multi-user line chat.

Run one with ``python -m sanschat.examples.chat --backend trio --port 8025``;
``python -m sanschat chat`` runs the chat too.
"""
