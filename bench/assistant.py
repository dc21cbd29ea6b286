"""Shopping assistant latency: from a shopper's message in to the reply out, through
the api's web chat channel, Rasa, the action server, the profile store and the
recommender, per kind of message, beside two ceilings measured in the same run:
Rasa's NLU alone and a reply that needs no custom action.

    .venv/bin/cdp assistant train          # first; the benchmark never trains
    .venv/bin/python bench/assistant.py
    .venv/bin/python bench/assistant.py --shoppers 40 --clients 2 \\
        --redis-url redis://127.0.0.1:6379/0

Beside p50/p95 per kind, sequential and with concurrent clients, it prints which
intent and actions Rasa ran for each kind (read from its trackers), the latency of
each path taken and by position in the conversation, and the api routes the
actions call, each timed alone, so a reader sees where the time goes.

Not a test: it prints figures and asserts nothing. It starts its own api, worker,
action server and Rasa on free ports (cli/stack.py) with a temporary SQLite profile
store and the demo catalog, its gear and reviews, and a Redis stream of its own.
Run it on an otherwise idle machine: Rasa alone takes a core while it answers.
"""

import argparse
import os
import re
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any
from urllib.parse import urlparse

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog.demo import DEMO_CATALOG, DEMO_GEAR, DEMO_REVIEWS  # noqa: E402
from cli.assistant import is_trained, model_path  # noqa: E402
from cli.stack import Ports, Stack, tail  # noqa: E402

WRITE_KEY_AUTH = ("demo-write-key", "")
ADMIN = {"Authorization": "Bearer change-me"}
TARGET_MS = 300.0
# Rasa keeps its tracker and lock stores in these databases of the same server
# (assistant/endpoints.yml); the run's keys are removed from them at the end.
RASA_REDIS_DBS = (1, 2)

# What shoppers type, per kind of message. "{name}", "{size}" and "{color}" are
# filled from what the assistant showed the shopper earlier in the conversation.
GREETINGS = ["hi", "hello", "hey there", "good morning", "hi, can you help me?"]
REFINEMENTS = [
    "cheaper",
    "anything cheaper?",
    "do you have something cheaper",
    "in blue",
    "do you have them in black",
    "show me those in gray",
    "under 40 please",
    "only size M",
]
DETAILS = [
    "what sizes does the first one come in",
    "tell me more about the {name}",
    "is the first one in stock?",
    "what is the {name} made of?",
    "more details on the first one please",
]
SIZE_ADVICE = [
    "I usually wear {size}, what size should I take",
    "which size should I get? I'm normally a size {size}",
    "I'm a size {size} in most brands, will that fit?",
    "what size would you recommend, I wear {size}",
]
ADD_TO_CART = [
    "add it to my cart in {size}",
    "put it in my basket, size {size}, {color}",
    "I'll take it in {size} in {color}",
    "add the {name} to my cart in {size}",
]
VIEW_CART = ["show my cart", "what's in my cart?", "can I see my basket", "view cart"]
POLICY = [
    "how much is delivery",
    "how long does shipping take?",
    "can I return it if it doesn't fit?",
    "what is your returns policy",
    "do you ship for free?",
]
RECOMMEND = [
    "what would you recommend",
    "any suggestions for me?",
    "what else would you suggest",
    "recommend me something",
]
STOP = ["stop", "STOP", "stop sending me messages", "unsubscribe"]
# Answered by a response (utter_*), no custom action: the dialogue-only ceiling.
RESPONSE_ONLY = ["thanks", "thank you", "great, thank you", "ok bye"]


@dataclass(frozen=True)
class Persona:
    """What a shopper browsed before chatting and how they ask for it."""

    category: str
    search: str
    size: str


PERSONAS = [
    Persona("Women/Tops/Jackets", "do you have a waterproof jacket for women under 80",
            "M"),
    Persona("Men/Tops/Hoodies & Sweatshirts", "I'm looking for a warm hoodie for men",
            "L"),
    Persona("Women/Bottoms/Pants", "yoga pants for women under 60", "29"),
    Persona("Men/Bottoms/Shorts", "running shorts for men", "34"),
    Persona("Women/Tops/Tees", "show me women's t-shirts", "S"),
    Persona("Men/Tops/Tees", "any black tees for men?", "XL"),
    Persona("Women/Tops/Bras & Tanks", "I need a sports bra for yoga", "S"),
    Persona("Men/Tops/Jackets", "a lightweight running jacket for men under 70",
            "M"),
    Persona("Women/Bottoms/Shorts", "women's shorts for the gym", "28"),
    Persona("Men/Bottoms/Pants", "mens track pants under 50", "32"),
    Persona("Women/Tops/Hoodies & Sweatshirts", "a cosy sweatshirt for women", "M"),
    Persona("Men/Tops/Tanks", "breathable tank top for men", "L"),
]  # fmt: skip

KINDS = [
    "greeting", "product search", "refinement", "product details", "size advice",
    "add to cart", "cart form answer", "view cart", "delivery/returns",
    "recommendations", "stop",
]  # fmt: skip
CEILING_WEB = "no custom action, web channel"
CEILING_REST = "no custom action, Rasa REST"


@dataclass
class Shopper:
    sender: str
    persona: Persona
    rng: Random
    # What the assistant has shown so far, to word the next message as a person would.
    names: list[str] = field(default_factory=list)
    colors: list[str] = field(default_factory=list)
    sizes: list[str] = field(default_factory=list)
    turns: int = 0  # messages sent so far in this conversation


@dataclass
class Sent:
    """One message and what came back; intent and actions are read afterwards
    from Rasa's tracker of the conversation."""

    sender: str
    kind: str
    text: str
    ms: float
    status: int
    replies: list[str]
    turn: int = 0
    intent: str = "?"
    actions: str = "?"


@dataclass
class Platform:
    stack: Stack
    workdir: Path
    run_id: str
    launched: float  # perf_counter when the processes were started
    ready_in: float = 0.0  # seconds until every component was healthy


# Starting the platform ------------------------------------------------------------


def import_demo_catalog(database_url: str) -> list[str]:
    """As `cdp demo` does: the clothes, each gear file, then the reviews."""
    steps = [["catalog", str(DEMO_CATALOG)]]
    steps += [["catalog", str(p), "--format", "magento-simple"] for p in DEMO_GEAR]
    steps.append(["reviews", str(DEMO_REVIEWS)])
    env = {**os.environ, "DATABASE_URL": database_url}
    lines = []
    for step in steps:
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "import", *step],
            env=env, cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"import {' '.join(step)} failed:\n{done.stderr}")
        lines.append(done.stdout.strip())
    return lines


def start_platform(args: argparse.Namespace) -> Platform:
    run_id = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="bench-assistant-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'cdp.db'}"
    stack = Stack(
        ports=Ports.free(),
        workdir=workdir,
        database_url=database_url,
        redis_url=args.redis_url,
        stream=f"bench:{run_id}:events",
        # Hex: Stack's default url-safe token starts with "-" one run in 64, and
        # `rasa run --auth-token -x...` then refuses to start.
        rasa_token=secrets.token_hex(24),
    )
    for line in import_demo_catalog(database_url):
        print(f"  {line}")
    launched = time.perf_counter()
    stack.start()
    return Platform(stack, workdir, run_id, launched)


def wait_ready(platform: Platform, timeout: float) -> None:
    try:
        platform.stack.wait_healthy(timeout=timeout)
    except TimeoutError:
        # Rasa is the slow one to start; its log says why it is not up.
        print(f"rasa log:\n{tail(platform.stack.log_path('rasa'))}", file=sys.stderr)
        raise
    platform.ready_in = time.perf_counter() - platform.launched


def redis_db(url: str, db: int | None) -> redis.Redis:
    """The server of ``url``, in its own database or in ``db``."""
    if db is not None:
        url = urlparse(url)._replace(path=f"/{db}").geturl()
    return redis.Redis.from_url(url)


def clean_up(platform: Platform, redis_url: str, *, keep: bool) -> None:
    platform.stack.stop()
    removed = 0
    for db in (None, *RASA_REDIS_DBS):
        client = redis_db(redis_url, db)
        removed += sum(
            client.delete(k) for k in client.scan_iter(f"*{platform.run_id}*")
        )
    print(f"\nremoved {removed} Redis keys of this run")
    if keep:
        print(f"logs and profile store kept in {platform.workdir}")
    else:
        shutil.rmtree(platform.workdir, ignore_errors=True)


# The catalog and the shoppers' history ------------------------------------------


def catalog_products(api: str) -> list[dict[str, Any]]:
    products, offset = [], 0
    while True:
        page = httpx.get(
            f"{api}/v1/products", params={"offset": offset, "limit": 200}, timeout=30
        ).json()
        products += page["items"]
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return products


def make_shoppers(run_id: str, prefix: str, count: int, seed: int) -> list[Shopper]:
    return [
        Shopper(
            sender=f"bench-{run_id}-{prefix}{n:03d}",
            persona=PERSONAS[n % len(PERSONAS)],
            rng=Random(seed * 1000 + n),
        )
        for n in range(count)
    ]


def seed_history(
    api: str, shoppers: list[Shopper], products: list[dict[str, Any]]
) -> int:
    """One to four Product Viewed events per shopper in the category they are about
    to ask for, sent as the storefront's tracker sends them."""
    by_category: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for product in products:
        for category in product["categories"]:
            by_category[category].append(product)
    sent = 0
    with httpx.Client(auth=WRITE_KEY_AUTH, timeout=30) as http:
        for shopper in shoppers:
            shelf = by_category[shopper.persona.category] or products
            for product in shopper.rng.sample(shelf, k=shopper.rng.randint(1, 4)):
                http.post(
                    f"{api}/v1/track", json=viewed(shopper.sender, product)
                ).raise_for_status()
                sent += 1
    return sent


def viewed(sender: str, product: dict[str, Any]) -> dict[str, Any]:
    return {
        "anonymousId": sender,
        "messageId": str(uuid.uuid4()),
        "event": "Product Viewed",
        "properties": {
            "product_id": product["sku"], "sku": product["sku"],
            "name": product["name"], "price": product["price"],
            "category": (product["categories"] or [""])[0], "currency": "USD",
        },
        "context": {"page": {"path": f"/shop/p/{product['url_key']}"}},
    }  # fmt: skip


def wait_applied(api: str, shoppers: list[Shopper], timeout: float = 120) -> float:
    """Until every shopper's profile exists: the worker applies views async."""
    started, waiting = time.perf_counter(), [s.sender for s in shoppers]
    with httpx.Client(headers=ADMIN, timeout=10) as http:
        while waiting and time.perf_counter() - started < timeout:
            url = f"{api}/v1/profiles/anonymous_id:{waiting[0]}/events"
            if http.get(url).status_code == 200:
                waiting.pop(0)
            else:
                time.sleep(0.2)
    if waiting:
        sys.exit(f"the worker applied no views for {len(waiting)} shoppers")
    return time.perf_counter() - started


# Conversations --------------------------------------------------------------------


class Chat:
    """One client of the web chat channel, timing each message."""

    def __init__(self, api: str, log: list[Sent], lock: threading.Lock) -> None:
        self.http = httpx.Client(auth=WRITE_KEY_AUTH, timeout=60)
        self.url = f"{api}/v1/channels/web/messages"
        self.log, self.lock = log, lock

    def say(self, shopper: Shopper, kind: str, text: str) -> list[dict[str, Any]]:
        body = {"sender": shopper.sender, "text": text}
        started = time.perf_counter()
        response = self.http.post(self.url, json=body)
        ms = (time.perf_counter() - started) * 1000
        messages = response.json().get("messages", []) if response.is_success else []
        record(self.log, self.lock, shopper, kind, text, ms, response, messages)
        remember(shopper, messages)
        return messages

    def close(self) -> None:
        self.http.close()


def record(
    log: list[Sent], lock: threading.Lock, shopper: Shopper, kind: str, text: str,
    ms: float, response: httpx.Response, messages: list[dict[str, Any]],
) -> None:  # fmt: skip
    shopper.turns += 1
    texts = [m.get("text") or "" for m in messages]
    sent = Sent(shopper.sender, kind, text, ms, response.status_code, texts,
                turn=shopper.turns)  # fmt: skip
    with lock:
        log.append(sent)


def remember(shopper: Shopper, messages: list[dict[str, Any]]) -> None:
    """Product names, colours and sizes the shopper has now seen."""
    for message in messages:
        products = (message.get("custom") or {}).get("products") or []
        if products:
            shopper.names = [p["name"] for p in products]
        text = message.get("text") or ""
        if colours := re.search(r"Colours: ([^.]+)\.", text):
            shopper.colors = colours.group(1).split(", ")
        if sizes := re.search(r"in stock in sizes ([^.(]+)", text):
            shopper.sizes = sizes.group(1).strip().split(", ")


def fill(template: str, shopper: Shopper) -> str:
    size = shopper.persona.size
    if shopper.sizes and size not in shopper.sizes:
        size = shopper.sizes[len(shopper.sizes) // 2]
    name = shopper.names[0] if shopper.names else "first one"
    color = shopper.colors[0].lower() if shopper.colors else "black"
    return template.format(name=name, size=size, color=color)


def converse(chat: Chat, shopper: Shopper) -> None:
    """The scripted conversation: about ten messages, in the order shoppers ask."""
    pick = shopper.rng.choice
    chat.say(shopper, "greeting", pick(GREETINGS))
    chat.say(shopper, "product search", shopper.persona.search)
    chat.say(shopper, "refinement", pick(REFINEMENTS))
    chat.say(shopper, "product details", fill(pick(DETAILS), shopper))
    # Their usual size, whatever is in stock; the cart message then adapts.
    usual = pick(SIZE_ADVICE).replace("{size}", shopper.persona.size)
    chat.say(shopper, "size advice", fill(usual, shopper))
    replies = chat.say(shopper, "add to cart", fill(pick(ADD_TO_CART), shopper))
    answer_cart_form(chat, shopper, replies)
    chat.say(shopper, "view cart", pick(VIEW_CART))
    chat.say(shopper, "delivery/returns", pick(POLICY))
    chat.say(shopper, "recommendations", pick(RECOMMEND))
    chat.say(shopper, "stop", pick(STOP))


def answer_cart_form(
    chat: Chat, shopper: Shopper, replies: list[dict[str, Any]]
) -> None:
    """Answer the cart form's questions (size, colour, product) as a shopper would;
    at most two answers, then the conversation moves on."""
    for _ in range(2):
        text = " ".join(m.get("text") or "" for m in replies)
        if "Which size?" in text:
            answer = fill("{size}", shopper)
        elif "Which colour?" in text:
            answer = fill("{color}", shopper)
        elif in_stock := re.search(r"in stock: ([^,.]+)", text):
            answer = in_stock.group(1)
        elif "Which product" in text:
            answer = fill("the {name}", shopper)
        else:
            return
        replies = chat.say(shopper, "cart form answer", answer)


def run_clients(
    api: str, shoppers: list[Shopper], clients: int
) -> tuple[list[Sent], float]:
    """Closed loop: each client runs its shoppers' conversations one after another."""
    log: list[Sent] = []
    lock = threading.Lock()

    def client(share: list[Shopper]) -> None:
        chat = Chat(api, log, lock)
        try:
            for shopper in share:
                converse(chat, shopper)
        finally:
            chat.close()

    threads = [
        threading.Thread(target=client, args=(shoppers[i::clients],))
        for i in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return log, time.perf_counter() - started


# Ceilings and the platform calls the actions make --------------------------------


def time_calls(calls: Iterable[Callable[[], httpx.Response]]) -> list[float]:
    samples = []
    for call in calls:
        started = time.perf_counter()
        call().raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def nlu_ceiling(stack: Stack, log: list[Sent]) -> dict[str, list[float]]:
    """POST /model/parse for every message of the sequential run, per kind."""
    by_kind: dict[str, list[float]] = defaultdict(list)
    url = f"{stack.rasa_url}/model/parse"
    with httpx.Client(params={"token": stack.rasa_token}, timeout=30) as http:
        for sent in log:
            by_kind[sent.kind] += time_calls(
                [lambda t=sent.text: http.post(url, json={"text": t})]
            )
    return by_kind


def response_only_ceiling(
    stack: Stack, shoppers: list[Shopper], log: list[Sent]
) -> None:
    """Replies that need no custom action, in conversations already started (so no
    session start either): through the web channel and straight to Rasa."""
    lock = threading.Lock()
    chat = Chat(stack.api_url, log, lock)
    rest = httpx.Client(timeout=30)
    url = f"{stack.rasa_url}/webhooks/rest/webhook"
    try:
        for shopper in shoppers:
            texts = shopper.rng.sample(RESPONSE_ONLY, k=len(RESPONSE_ONLY))
            for n, text in enumerate(texts):
                if n % 2 == 0:
                    chat.say(shopper, CEILING_WEB, text)
                    continue
                body = {"sender": shopper.sender, "message": text}
                started = time.perf_counter()
                response = rest.post(url, json=body)
                ms = (time.perf_counter() - started) * 1000
                record(log, lock, shopper, CEILING_REST, text, ms, response,
                       response.json())  # fmt: skip
    finally:
        chat.close()
        rest.close()


def platform_calls(
    api: str, shoppers: list[Shopper], products: list[dict[str, Any]]
) -> dict[str, list[float]]:
    """The api routes the actions call, each alone, for the same shoppers."""
    skus = [p["sku"] for p in products]
    with httpx.Client(base_url=api, timeout=30) as http:
        calls: dict[str, Callable[[Shopper], httpx.Response]] = {
            "GET /v1/products/search": lambda s: http.get(
                "/v1/products/search", params={"q": s.persona.search, "limit": 3}
            ),
            "GET /v1/products/{sku}": lambda s: http.get(
                f"/v1/products/{s.rng.choice(skus)}"
            ),
            "GET /v1/profiles/{ref}": lambda s: http.get(
                f"/v1/profiles/anonymous_id:{s.sender}", headers=ADMIN
            ),
            "GET /v1/recommendations (profile)": lambda s: http.get(
                "/v1/recommendations",
                params={"profile": f"anonymous_id:{s.sender}", "limit": 3},
                headers=ADMIN,
            ),
            "GET /shop/api/cart/{id}": lambda s: http.get(f"/shop/api/cart/{s.sender}"),
            "POST /v1/track": lambda s: http.post(
                "/v1/track", json=viewed(s.sender, s.rng.choice(products)),
                auth=WRITE_KEY_AUTH,
            ),
        }  # fmt: skip
        return {
            route: time_calls([lambda s=s, c=call: c(s) for s in shoppers * 2])
            for route, call in calls.items()
        }


# What Rasa did with each message ---------------------------------------------


def annotate_paths(stack: Stack, log: list[Sent]) -> None:
    """Intent and actions of each message, from the conversation's tracker, in the
    order the messages were sent."""
    by_sender: dict[str, list[Sent]] = defaultdict(list)
    for sent in log:
        by_sender[sent.sender].append(sent)
    with httpx.Client(params={"token": stack.rasa_token}, timeout=30) as http:
        for sender, sents in by_sender.items():
            url = f"{stack.rasa_url}/conversations/{sender}/tracker"
            events = http.get(url).json().get("events", [])
            for sent, (intent, actions) in zip(sents, turns(events), strict=False):
                sent.intent, sent.actions = intent, "+".join(actions) or "-"


def turns(events: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """(intent, actions run) per user message; the session start that comes before
    the first message counts towards it."""
    found: list[tuple[str, list[str]]] = []
    before: list[str] = []
    for event in events:
        if event["event"] == "user":
            intent = (event.get("parse_data") or {}).get("intent") or {}
            found.append((intent.get("name") or "?", before))
            before = []
        elif event["event"] == "action" and event["name"] != "action_listen":
            (found[-1][1] if found else before).append(event["name"])
    return found


# The report ----------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return (samples[0], samples[0]) if samples else (float("nan"),) * 2
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94]


def latency_table(log: list[Sent], nlu: dict[str, list[float]] | None) -> float:
    """Per kind: the chat's p50/p95 and, when measured, NLU alone for the same
    messages. Returns the overall p95."""
    head = f"  {'kind':18} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}"
    print(head + (f" {'NLU p50':>8} {'NLU p95':>8}" if nlu else "") + "  errors")
    for kind in KINDS:
        sents = [s for s in log if s.kind == kind]
        if not sents:
            continue
        p50, p95 = percentiles([s.ms for s in sents])
        row = f"  {kind:18} {len(sents):4} {p50:8.0f} {p95:8.0f}"
        if nlu:
            n50, n95 = percentiles(nlu.get(kind, []))
            row += f" {n50:8.1f} {n95:8.1f}"
        print(row + f"  {errors(sents) or ''}")
    p50, p95 = percentiles([s.ms for s in log])
    every = [ms for samples in (nlu or {}).values() for ms in samples]
    total = f"  {'all messages':18} {len(log):4} {p50:8.0f} {p95:8.0f}"
    if nlu:
        n50, n95 = percentiles(every)
        total += f" {n50:8.1f} {n95:8.1f}"
    print(total + f"  {errors(log) or ''}")
    return p95


def errors(sents: list[Sent]) -> str:
    failed = sum(s.status != 200 for s in sents)
    degraded = sum(any("can't reach the shop" in r for r in s.replies) for s in sents)
    parts = [f"{failed} HTTP errors"] if failed else []
    parts += [f"{degraded} 'can't reach the shop'"] if degraded else []
    return ", ".join(parts)


def path_table(log: list[Sent]) -> None:
    """Whether the intended path ran: the intent and actions seen most often."""
    print(f"  {'kind':28} {'intent recognised most often':34} actions run most often")
    for kind in [*KINDS, CEILING_WEB, CEILING_REST]:
        sents = [s for s in log if s.kind == kind]
        if not sents:
            continue
        intent, n_intent = Counter(s.intent for s in sents).most_common(1)[0]
        actions, n_actions = Counter(s.actions for s in sents).most_common(1)[0]
        share = f"{intent} {n_intent}/{len(sents)}"
        print(f"  {kind:28} {share:34} {actions} {n_actions}/{len(sents)}")


def latency_by_path(log: list[Sent], least: int = 3) -> None:
    """Per kind, the latency of each path Rasa took at least ``least`` times: a
    misrouted message or a form still open shows up as its own row."""
    print(f"  {'kind':18} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}  intent: actions")
    for kind in KINDS:
        paths: dict[str, list[float]] = defaultdict(list)
        for sent in (s for s in log if s.kind == kind):
            paths[f"{sent.intent}: {sent.actions}"].append(sent.ms)
        for path, samples in sorted(paths.items(), key=lambda p: -len(p[1])):
            if len(samples) >= least:
                p50, p95 = percentiles(samples)
                print(f"  {kind:18} {len(samples):4} {p50:8.0f} {p95:8.0f}  {path}")


def latency_by_turn(label: str, log: list[Sent], width: int = 3) -> None:
    """Rasa reads and writes the whole conversation on every message, so a later
    message costs more than an early one of the same kind."""
    buckets: dict[int, list[float]] = defaultdict(list)
    for sent in log:
        buckets[(sent.turn - 1) // width].append(sent.ms)
    for bucket, samples in sorted(buckets.items()):
        p50, p95 = percentiles(samples)
        turns = f"{label}, {bucket * width + 1}-{bucket * width + width}"
        print(f"  {turns:28} {len(samples):4} {p50:8.0f} {p95:8.0f}")


def verdict(label: str, p95: float) -> str:
    met = "met" if p95 <= TARGET_MS else "MISSED"
    return f"  {label}: p95 {p95:.0f} ms, target {TARGET_MS:.0f} ms {met}"


def print_header(args: argparse.Namespace) -> None:
    print("$ " + shlex.join(sys.orig_argv))
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
        text=True,
    ).stdout.strip()  # fmt: skip
    cores = len(os.sched_getaffinity(0))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"shopping assistant latency, commit {commit or '?'}, {cores} cores "
          f"(os.cpu_count {os.cpu_count()}), load average {load} at start")  # fmt: skip
    print(f"model {model_path().relative_to(ROOT)}, Redis {args.redis_url}")


def print_catalog(platform: Platform, products: list[dict[str, Any]]) -> None:
    health = httpx.get(f"{platform.stack.api_url}/health", timeout=10).json()
    variants = sum(len(p.get("variants") or []) for p in products)
    reviewed = sum(bool(p.get("review_count")) for p in products)
    print(f"catalog: {len(products)} products ({variants} variants, {reviewed} with "
          f"reviews), index {health['components']['index']['detail']}")  # fmt: skip
    print(f"profile store: {health['components']['database']['detail']}; "
          f"api, worker, action server and Rasa healthy in "
          f"{platform.ready_in:.0f}s")  # fmt: skip


def print_ceilings(
    log: list[Sent], routes: dict[str, list[float]], nlu: dict[str, list[float]]
) -> None:
    print("\nceilings, same run (sequential, one client):")
    print(f"  {'':44} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}")
    every = [ms for samples in nlu.values() for ms in samples]
    rows = [("Rasa NLU alone, POST /model/parse", every)]
    left_out = 0
    for kind in (CEILING_WEB, CEILING_REST):
        sents = [s for s in log if s.kind == kind]
        # Only replies Rasa really gave with responses alone (utter_*).
        plain = [s.ms for s in sents if response_only(s)]
        left_out += len(sents) - len(plain)
        rows.append((f"reply, {kind}", plain))
    for label, samples in rows:
        p50, p95 = percentiles(samples)
        print(f"  {label:44} {len(samples):4} {p50:8.1f} {p95:8.1f}")
    if left_out:
        print(f"  ({left_out} 'thanks' or 'bye' ran a custom action: left out)")
    print("\napi routes the actions call, each alone (sequential, one client):")
    for route, samples in routes.items():
        p50, p95 = percentiles(samples)
        print(f"  {route:44} {len(samples):4} {p50:8.1f} {p95:8.1f}")


def response_only(sent: Sent) -> bool:
    return sent.actions != "?" and all(
        a.startswith("utter_") for a in sent.actions.split("+")
    )


def warm_up(platform: Platform) -> int:
    """One full conversation and a few parses before anything is timed, so the
    first requests' imports, connections and TensorFlow graph are not counted."""
    stack = platform.stack
    shoppers = make_shoppers(platform.run_id, "warm", 1, seed=0)
    log: list[Sent] = []
    chat = Chat(stack.api_url, log, threading.Lock())
    try:
        converse(chat, shoppers[0])
    finally:
        chat.close()
    nlu_ceiling(stack, log)
    return len(log)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--shoppers", type=int, default=40, help="sequential run")
    parser.add_argument(
        "--clients", type=int, default=2, help="concurrent run; 0 to skip it"
    )
    parser.add_argument(
        "--concurrent-shoppers", type=int, default=20, help="in the concurrent run"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start-timeout", type=float, default=300)
    parser.add_argument("--keep", action="store_true", help="keep logs and the db")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not is_trained():
        sys.exit(
            "the assistant model is missing or older than its data: run "
            "`.venv/bin/cdp assistant train` first (the benchmark never trains)"
        )
    started = time.perf_counter()
    print_header(args)
    platform = start_platform(args)
    finished = False
    try:
        wait_ready(platform, args.start_timeout)
        report(measure(platform, args), args)
        finished = True
    finally:
        # After a failure the logs stay, to read why.
        clean_up(platform, args.redis_url, keep=args.keep or not finished)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"wall time {time.perf_counter() - started:.0f}s, load average {load} at end")


@dataclass
class Results:
    log: list[Sent]  # the sequential run
    seconds: float
    nlu: dict[str, list[float]]  # /model/parse for the same messages, per kind
    with_ceilings: list[Sent]  # the sequential run, then the response-only replies
    routes: dict[str, list[float]]
    pair_log: list[Sent]  # the concurrent run
    pair_seconds: float


def measure(platform: Platform, args: argparse.Namespace) -> Results:
    stack, api = platform.stack, platform.stack.api_url
    products = catalog_products(api)
    print_catalog(platform, products)
    solo = make_shoppers(platform.run_id, "s", args.shoppers, args.seed)
    pair = make_shoppers(platform.run_id, "c", args.concurrent_shoppers, args.seed + 1)
    views = seed_history(api, solo + pair, products)
    applied = wait_applied(api, solo + pair)
    print(f"shoppers: {len(solo)} sequential, {len(pair) if args.clients else 0} in "
          f"the {args.clients}-client run; {views} Product Viewed events tracked "
          f"first, applied by the worker within {applied:.1f}s")  # fmt: skip
    print(f"warm-up: {warm_up(platform)} chat messages (one conversation) and as "
          "many NLU parses, not counted")  # fmt: skip

    log, seconds = run_clients(api, solo, clients=1)
    nlu = nlu_ceiling(stack, log)
    with_ceilings = list(log)
    response_only_ceiling(stack, solo, with_ceilings)
    routes = platform_calls(api, solo, products)
    pair_log, pair_seconds = (
        run_clients(api, pair, clients=args.clients) if args.clients else ([], 0.0)
    )
    annotate_paths(stack, with_ceilings + pair_log)
    return Results(log, seconds, nlu, with_ceilings, routes, pair_log, pair_seconds)


def report(results: Results, args: argparse.Namespace) -> None:
    log, pair_log = results.log, results.pair_log
    print(f"\nsequential, one client: {len(log)} messages in {results.seconds:.0f}s "
          f"({len(log) / results.seconds:.1f} messages/s)")  # fmt: skip
    p95_solo, p95_pair = latency_table(log, results.nlu), float("nan")
    if args.clients:
        print(f"\n{args.clients} clients at once: {len(pair_log)} messages in "
              f"{results.pair_seconds:.0f}s "
              f"({len(pair_log) / results.pair_seconds:.1f} messages/s)")  # fmt: skip
        p95_pair = latency_table(pair_log, None)

    print_ceilings(results.with_ceilings, results.routes, results.nlu)
    print("\npath exercised (from Rasa's trackers, all runs):")
    path_table(results.with_ceilings + pair_log)
    print("\nsequential latency by path taken (paths seen at least 3 times):")
    latency_by_path(log)
    print("\nsequential latency by position in the conversation:")
    print(f"  {'':28} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}")
    latency_by_turn("every kind", log)
    ceilings = [
        s for s in results.with_ceilings if s.kind in (CEILING_WEB, CEILING_REST)
    ]
    latency_by_turn("no custom action", ceilings)

    print("\ntarget from the issue, p95 300 ms on 2 cores:")
    print(verdict("sequential, one client", p95_solo))
    if args.clients:
        print(verdict(f"{args.clients} clients", p95_pair))
    over = slow_kinds(log)
    print(f"  kinds over the target (sequential): {', '.join(over) or 'none'}")


def slow_kinds(log: list[Sent]) -> list[str]:
    by_kind: dict[str, list[float]] = defaultdict(list)
    for sent in log:
        by_kind[sent.kind].append(sent.ms)
    return [
        f"{kind} ({p95:.0f} ms)"
        for kind, samples in by_kind.items()
        if (p95 := percentiles(samples)[1]) > TARGET_MS
    ]


if __name__ == "__main__":
    main()
