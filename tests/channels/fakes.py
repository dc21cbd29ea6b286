"""Local stand-ins for the remote ends of the chat channels: Meta's Graph API and
Rasa's REST channel, each a real HTTP server on a loopback port that records what
it was sent and answers in the documented shapes.

The Graph API fake can be told to answer the next requests with errors or late,
to play a rate limit, an outage or a timeout. The Rasa fake can be stopped and
started again on the same port, to play Rasa going down and coming back.
"""

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from core.redis import free_port

TOKEN = "test-access-token"


@dataclass
class Request:
    at: float
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Reply:
    """A scripted answer: status, headers and JSON body, after a delay."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0


def graph_error(code: int, message: str) -> dict[str, Any]:
    """An error body in the shape the Graph API answers with."""
    return {"error": {"message": message, "type": "OAuthException", "code": code,
                      "fbtrace_id": "AbCdEfGh"}}  # fmt: skip


class _Server:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "_Server":
        handler = self._handler()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                reply = fake.answer(self.path, dict(self.headers), body)
                time.sleep(reply.delay)
                data = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting: a timeout being played

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler


class FakeGraph(_Server):
    """Meta's Graph API: POST /{node}/messages for WhatsApp and Messenger."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []
        self.script: list[Reply] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def answer(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        with self._lock:
            self.requests.append(Request(time.monotonic(), path, headers, body))
            if self.script:
                return self.script.pop(0)
            number = next(self._ids)
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return Reply(401, body=graph_error(190, "Invalid OAuth access token."))
        if not path.endswith("/messages"):
            return Reply(404, body=graph_error(100, "Unknown path components"))
        if body.get("messaging_product") == "whatsapp":
            to = body["to"]
            return Reply(body={
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": f"wamid.FAKE{number:04d}"}],
            })  # fmt: skip
        recipient = body["recipient"]["id"]
        return Reply(body={"recipient_id": recipient, "message_id": f"m_FAKE{number}"})

    def sent(self) -> list[dict[str, Any]]:
        """Bodies of the sends Meta accepted, in order."""
        with self._lock:
            requests = list(self.requests)
        return [r.body for r in requests if r.path.endswith("/messages")]


def echo(sender: str, text: str) -> list[dict[str, Any]]:
    return [{"recipient_id": sender, "text": f"You said: {text}"}]


def as_rasa_entities(entities: Any) -> list[dict[str, Any]]:
    """The entities a trigger-intent call puts on the tracker: a list as given, and
    the short form {"name": value} as one entity per key, a list value included."""
    if isinstance(entities, dict):
        return [{"entity": name, "value": value} for name, value in entities.items()]
    return list(entities or [])


class FakeRasa(_Server):
    """Rasa's REST channel: answers each message with what ``reply`` returns; a
    trigger-intent call is answered with the ``message`` entity it carries."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []
        self.reply: Callable[[str, str], list[dict[str, Any]]] = echo
        # (sender, intent, entities) of each trigger-intent call (campaigns), the
        # entities as Rasa puts them on the tracker.
        self.triggered: list[tuple[str, str, list[dict[str, Any]]]] = []
        # Called while a trigger is answered, as Rasa's actions call the api then.
        self.while_triggered: Callable[[], None] = lambda: None

    def answer(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        route = path.split("?", 1)[0]
        if route.startswith("/conversations/") and route.endswith("/trigger_intent"):
            sender = route.split("/")[2]
            entities = as_rasa_entities(body.get("entities"))
            self.triggered.append((sender, body["name"], entities))
            self.while_triggered()
            said = next(
                (e["value"] for e in entities if e["entity"] == "message"), "(nudge)"
            )
            return Reply(body={"messages": [{"recipient_id": sender, "text": said}]})
        if route != "/webhooks/rest/webhook":
            return Reply(404, body={"message": "not found"})
        self.received.append(body)
        return Reply(body=self.reply(body["sender"], body["message"]))
