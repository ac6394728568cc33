"""moto's server for SQS, S3, Secrets Manager and SNS, patched so a request costs what it
touches; DynamoDB is not served here (the local stack runs dynoxide for it).

moto's own server is werkzeug's development server, which closes the connection after every
request (so every AWS call paid a new TCP connection and a new thread). Here moto's WSGI
application runs under waitress instead, a production WSGI server that keeps connections alive
and serves requests from a pool of threads. The pool is large because an SQS long poll holds
its thread while it waits. (waitress, like most servers, drops request headers spelled with an
underscore, which moto's own handler kept for S3 object metadata; Herald sets no S3 metadata.)

`moto_cbor` serves CloudWatch's CBOR protocol, which the AWS SDK for Rust speaks and moto does
not (the health check reads a queue's oldest message age from CloudWatch).

`moto_patches` makes SQS receives and deletes walk a queue once and removes work moto repeated
per request (see its docstring). A DynamoDB request is refused with a message naming
`AWS_ENDPOINT_URL_DYNAMODB`: a client that reaches moto for DynamoDB is misconfigured, and
moto's DynamoDB (whose transactions copy whole tables) would hide that by being slow.

    python infra/moto_server.py -H 127.0.0.1 -p 4566
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import waitress
from moto.server import DomainDispatcherApplication, create_backend_app

import moto_patches
from moto_cbor import cloudwatch_cbor

# Threads serving requests: SQS long polls (up to 20 s) each hold one while they wait.
THREADS = 64


def refuse_dynamodb(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return app(environ, start_response)
        body = json.dumps({
            "__type": "com.amazon.coral.service#UnknownOperationException",
            "message": "DynamoDB is not served by moto here: send it to AWS_ENDPOINT_URL_DYNAMODB (dynoxide)",
        }).encode()
        start_response("400 Bad Request", [("content-type", "application/x-amz-json-1.0"), ("content-length", str(len(body)))])
        return [body]

    return wrapped


def request_counts(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """`GET /_herald/requests` answers, per operation (the `X-Amz-Target` header, or the query's
    `Action`, or the method and path's first segment), how many requests the server has taken
    and the milliseconds spent producing their answers, as JSON: to see what a workload asks of
    the emulator and what each kind of request costs it."""
    counts: Counter[str] = Counter()
    millis: Counter[str] = Counter()
    lock = threading.Lock()  # SQS and other requests are counted from many threads at once

    def operation(environ: dict[str, Any]) -> str:
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            return target
        for pair in environ.get("QUERY_STRING", "").split("&"):
            if pair.startswith("Action="):
                return pair[len("Action="):]
        first = environ.get("PATH_INFO", "/").split("/")[1]
        return f"{environ.get('REQUEST_METHOD')} /{first}"

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/_herald/requests":
            with lock:
                report = {op: {"count": n, "ms": round(millis[op], 1)} for op, n in counts.most_common()}
            body = json.dumps(report).encode()
            start_response("200 OK", [("content-type", "application/json"), ("content-length", str(len(body)))])
            return [body]
        op = operation(environ)
        started = time.perf_counter()
        answer = list(app(environ, start_response))
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            counts[op] += 1
            millis[op] += elapsed
        return answer

    return wrapped


def memory_report(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """With HERALD_MOTO_TRACEMALLOC=1: `GET /_herald/memory` lists the 25 source lines holding
    the most memory (Python's tracemalloc), to find what makes the emulator grow."""
    import tracemalloc

    tracemalloc.start(8)

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/_herald/memory":
            return app(environ, start_response)
        snapshot = tracemalloc.take_snapshot()
        body = "\n\n".join(
            f"{stat.size / 1048576:.1f} MiB in {stat.count} blocks\n" + "\n".join(stat.traceback.format())
            for stat in snapshot.statistics("traceback")[:25]
        ).encode()
        start_response("200 OK", [("content-type", "text/plain"), ("content-length", str(len(body)))])
        return [body]

    return wrapped


def few_malloc_arenas() -> None:
    """glibc gives each thread that allocates its own malloc arena (up to 8 per core), and the
    server starts a thread per request: freed memory then stays spread over every arena, and the
    process's resident size climbs to a gigabyte while Python holds a few tens of MiB. Two
    arenas, as MALLOC_ARENA_MAX=2 would set, keep it level. Only on glibc; set before any
    request thread starts."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name and "libc.so" in name:
        m_arena_max = -8  # <malloc.h>
        ctypes.CDLL(name).mallopt(m_arena_max, 2)


def exit_with_parent() -> None:
    """Ends this server once the process that started it is gone (a test binary that keeps
    its server in a static never gets to stop it)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the parent process ends")
    args = parser.parse_args()
    if args.exit_with_parent:
        exit_with_parent()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    moto_patches.apply()
    few_malloc_arenas()
    app = refuse_dynamodb(request_counts(cloudwatch_cbor(DomainDispatcherApplication(create_backend_app))))
    if os.environ.get("HERALD_MOTO_TRACEMALLOC") == "1":
        app = memory_report(app)
    print(f" * moto {moto_patches.PATCHED_MOTO_VERSION} (patched) on http://{args.host}:{args.port}", flush=True)
    waitress.serve(
        app,
        host=args.host,
        port=args.port,
        threads=THREADS,
        # Every function, the event sources and the tests keep connections open.
        connection_limit=1000,
        # Longer than the AWS SDKs' idle pool timeout (90 s), so a client closes an idle
        # connection before the server does and never sends a request into a closing socket.
        channel_timeout=300,
        ident="moto",
        _quiet=True,
    )


if __name__ == "__main__":
    main()
