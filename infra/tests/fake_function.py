"""A stand-in Lambda function for infra/tests/test_runner.py: the Runtime API client loop that
`lambda_runtime` runs, in a few lines of Python, doing what each event asks.

Events (JSON objects; every key optional):
  {"sleep": 0.5}            wait before answering
  {"pidfile": "/tmp/x"}     write this process's id there first (to find it while it sleeps)
  {"fail": "message"}       post an error instead of a response
  {"exit": 3}               exit with that status mid-invocation
The response echoes the event, this process's id, the invocation's headers and environment.
Environment: FAKE_INIT=error posts /init/error and exits; FAKE_INIT=exit exits before `next`.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time


def main() -> None:
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    init = os.environ.get("FAKE_INIT")
    if init == "exit":
        sys.exit(3)
    if init == "error":
        body = json.dumps({"errorType": "FakeInitError", "errorMessage": "no configuration"})
        conn.request("POST", "/2018-06-01/runtime/init/error", body, {"Lambda-Runtime-Function-Error-Type": "Runtime.InitError"})
        conn.getresponse().read()
        sys.exit(1)
    while True:
        conn.request("GET", "/2018-06-01/runtime/invocation/next")
        r = conn.getresponse()
        event = json.loads(r.read())
        request_id = r.getheader("Lambda-Runtime-Aws-Request-Id")
        if "pidfile" in event:
            with open(event["pidfile"], "w") as f:
                f.write(str(os.getpid()))
        time.sleep(float(event.get("sleep", 0)))
        if "exit" in event:
            os._exit(int(event["exit"]))
        if "fail" in event:
            path, body = "error", json.dumps({"errorType": "FakeError", "errorMessage": event["fail"]})
        else:
            path, body = "response", json.dumps(
                {
                    "event": event,
                    "pid": os.getpid(),
                    "request_id": request_id,
                    "deadline_ms": int(r.getheader("Lambda-Runtime-Deadline-Ms")),
                    "arn": r.getheader("Lambda-Runtime-Invoked-Function-Arn"),
                    "trace_id": r.getheader("Lambda-Runtime-Trace-Id"),
                    "env": dict(os.environ),
                }
            )
        conn.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/{path}", body)
        conn.getresponse().read()


if __name__ == "__main__":
    main()
