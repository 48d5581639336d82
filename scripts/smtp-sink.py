#!/usr/bin/env python3
"""A real SMTP server for the e-mail delivery tests (aiosmtpd).

    smtp-sink.py PORT DIR [--reject-rcpt ADDRESS]... [--tempfail-rcpt ADDRESS]...

Listens on 127.0.0.1:PORT and prints `ready` on stdout once it accepts connections.
Each accepted message is written to DIR as NNNN.eml (the bytes as received) beside
NNNN.json: the envelope and the message as Python's own MIME parser reads it
(headers, and every leaf part with its content type, disposition, file name and
decoded content), so the Rust tests check the structure with an independent parser.

--reject-rcpt answers `550 5.1.1 no such user` for that recipient and
--tempfail-rcpt `451 4.3.0 try later`. Exits when stdin closes (the test that
started it is gone) or on SIGTERM/SIGINT.
"""

import argparse
import email
import email.policy
import json
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller


def describe(raw: bytes) -> dict:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = []
    containers = []
    for part in msg.walk():
        if part.is_multipart():
            containers.append(part.get_content_type())
            continue
        content = part.get_content()
        if isinstance(content, bytes):
            content = content.decode("utf-8", errors="replace")
        parts.append(
            {
                "content_type": part.get_content_type(),
                "charset": part.get_content_charset(),
                "disposition": part.get_content_disposition(),
                "filename": part.get_filename(),
                "content": content,
            }
        )
    header = lambda name: None if msg[name] is None else str(msg[name])
    return {
        "subject": header("subject"),
        "message_id": header("message-id"),
        "date": header("date"),
        "from": header("from"),
        "to": header("to"),
        "cc": header("cc"),
        "containers": containers,
        "parts": parts,
    }


class Sink:
    def __init__(self, directory: str, reject: set, tempfail: set):
        self.directory = directory
        self.reject = reject
        self.tempfail = tempfail
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 no such user"
        if address.lower() in self.tempfail:
            return "451 4.3.0 try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        with self.lock:
            self.count += 1
            n = self.count
        base = os.path.join(self.directory, f"{n:04d}")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "message": describe(raw),
        }
        # Write, then rename: a reader never sees half a file.
        for ext, data in ((".eml", raw), (".json", json.dumps(record).encode())):
            with open(base + ext + ".tmp", "wb") as f:
                f.write(data)
            os.replace(base + ext + ".tmp", base + ext)
        return f"250 2.0.0 OK queued as {n:04d}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("port", type=int)
    p.add_argument("directory")
    p.add_argument("--reject-rcpt", action="append", default=[])
    p.add_argument("--tempfail-rcpt", action="append", default=[])
    args = p.parse_args()
    os.makedirs(args.directory, exist_ok=True)

    sink = Sink(
        args.directory,
        {a.lower() for a in args.reject_rcpt},
        {a.lower() for a in args.tempfail_rcpt},
    )
    controller = Controller(sink, hostname="127.0.0.1", port=args.port, enable_SMTPUTF8=True)
    controller.start()  # returns once the server answers
    print("ready", flush=True)

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
