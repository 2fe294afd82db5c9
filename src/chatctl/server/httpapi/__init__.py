"""The HTTP API on the WebSocket's port (docs/http.md): publish, history, Server-Sent Events,
rooms and users, and incoming webhooks.

=================  ==============================================================
``answers.py``     a request's head, a whole answer, an error answer
``exchange.py``    one HTTP/1.1 connection parsed by h11: requests, answers, limits
``front.py``       the API of one server: the connections it took, closed at stop
``routes.py``      which handler answers which method and path; tokens and rooms
``reads.py``       ``GET /rooms``, ``/rooms/{room}/messages``, ``/rooms/{room}/users``
``publish.py``     ``POST /rooms/{room}/messages`` and ``POST /hooks/{token}``
``events.py``      ``GET /rooms/{room}/events``: a room as Server-Sent Events
=================  ==============================================================

server/wire.py hands a connection over here when its request line is not a WebSocket
upgrade (:func:`routes.takes_over`); everything else stays with websockets.
"""
