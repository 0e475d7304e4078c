"""A real SMTP server for latchkey's tests: aiosmtpd on 127.0.0.1.

    python server.py --dir INBOX [--port PORT] [--reject SUBSTRING]

Listens on 127.0.0.1:PORT (0, the default, picks a free port) and prints one
JSON line, {"port": N}, once it accepts connections. Every message it
receives is written to INBOX as its own JSON file,
{"mail_from", "rcpt_tos", "data", "received_at"}, named so that sorting the
names gives the order of arrival; the file appears whole (written aside,
then renamed), so a reader never sees half a message. A recipient containing
SUBSTRING (default "reject") is refused for good with 550.

It runs until it is killed or its standard input closes (the test that
started it is gone). Killing it and starting it again with the same --port
and --dir is an SMTP outage: connections are refused meanwhile, and the inbox
keeps what arrived before. Used by the Rust tests (tests/common/mail.rs) and
the React example's end-to-end run (examples/react-client/e2e/smtp.mjs).
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import time

from aiosmtpd.smtp import SMTP


class Inbox:
    def __init__(self, folder, reject):
        self.folder = folder
        self.reject = reject
        self.count = 0
        os.makedirs(folder, exist_ok=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and self.reject in address:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        now = time.time_ns()
        name = f"{now:020d}-{os.getpid()}-{self.count:06d}.json"
        message = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.original_content.decode("utf-8", "replace"),
            "received_at": now / 1e9,
        }
        partial = os.path.join(self.folder, "." + name + ".part")
        with open(partial, "w", encoding="utf-8") as f:
            json.dump(message, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, os.path.join(self.folder, name))
        return "250 2.0.0 queued"


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reject", default="reject")
    args = parser.parse_args()

    loop = asyncio.get_running_loop()
    inbox = Inbox(args.dir, args.reject)
    server = await loop.create_server(
        lambda: SMTP(inbox, hostname="latchkey-test-smtp", enable_SMTPUTF8=True),
        host="127.0.0.1",
        port=args.port,
        reuse_address=True,
    )
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # End when whoever started us is gone (its end of our stdin closes).
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.buffer.read1() or stop.set())
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
