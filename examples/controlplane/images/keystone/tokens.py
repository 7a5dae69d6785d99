#!/usr/bin/env python3
"""The example's keystone client (Python's standard library alone).

  tokens.py issue URL           a token for the admin (password login);
                                prints it (exit 1: none)
  tokens.py validate URL TOKEN  the token validated by itself (GET
                                /auth/tokens); prints its user's name
  tokens.py load URL DIR        a token every TOKEN_INTERVAL seconds (0.1)
                                until killed; one line a request in
                                DIR/writes: "N START_NS END_NS ok|fail", the
                                errors in DIR/errors

URL is the identity endpoint (http://10.0.0.10:5000/v3). KEYSTONE_ADMIN_USER
(admin) and KEYSTONE_ADMIN_PASSWORD are the credentials. A request is one
attempt of at most TOKEN_TIMEOUT seconds (10): a token is issued when the
answer is 201 with an X-Subject-Token.
"""

import json
import os
import sys
import time
import urllib.request


def issue(url):
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": os.environ.get("KEYSTONE_ADMIN_USER", "admin"),
                        "domain": {"id": "default"},
                        "password": os.environ["KEYSTONE_ADMIN_PASSWORD"],
                    }
                },
            }
        }
    }
    request = urllib.request.Request(
        url.rstrip("/") + "/auth/tokens",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    timeout = float(os.environ.get("TOKEN_TIMEOUT", "10"))
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        answer.read()
        token = answer.headers.get("X-Subject-Token")
        if answer.status != 201 or not token:
            raise RuntimeError(f"answer {answer.status} without a token")
        return token


def validate(url, token):
    request = urllib.request.Request(
        url.rstrip("/") + "/auth/tokens",
        headers={"X-Auth-Token": token, "X-Subject-Token": token},
    )
    timeout = float(os.environ.get("TOKEN_TIMEOUT", "10"))
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.load(answer)["token"]["user"]["name"]


def load(url, directory):
    interval = float(os.environ.get("TOKEN_INTERVAL", "0.1"))
    out = open(os.path.join(directory, "writes"), "a", buffering=1)
    errors = open(os.path.join(directory, "errors"), "a", buffering=1)
    n = 0
    while True:
        start = time.time_ns()
        n += 1
        try:
            issue(url)
            result = "ok"
        except Exception as e:  # every failure counts, whatever its kind
            result = "fail"
            errors.write(f"{time.time_ns()} {n} {type(e).__name__}: {e}".replace("\n", " ") + "\n")
        out.write(f"{n} {start} {time.time_ns()} {result}\n")
        time.sleep(max(0.0, interval - (time.time_ns() - start) / 1e9))


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("issue", "validate", "load"):
        sys.exit(__doc__)
    command, url = sys.argv[1:3]
    if command == "load":
        if len(sys.argv) < 4:
            sys.exit(__doc__)
        load(url, sys.argv[3])
    try:
        if command == "validate":
            if len(sys.argv) < 4:
                sys.exit(__doc__)
            print(validate(url, sys.argv[3]))
        else:
            print(issue(url))
    except Exception as e:
        sys.exit(f"{command} at {url}: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
