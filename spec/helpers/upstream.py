#!/usr/bin/env python3
"""upstream.py - an HTTP/1.1 upstream for the client specs, written apart
from luacluster so the client is tested against someone else's server.

    python3 spec/helpers/upstream.py     prints "PORT <n>" once listening

Keep-alive by default; the path picks a behaviour (see ROUTES below), from
well-formed answers in every framing to servers that misbehave. GET /stats
returns {"connections": n, "requests": n} counted since start.
"""
import asyncio
import json
import sys

stats = {"connections": 0, "requests": 0}


def response(status, body=b"", headers=None, reason="OK"):
    head = [f"HTTP/1.1 {status} {reason}"]
    hs = {"Content-Length": str(len(body))}
    hs.update(headers or {})
    for k, v in hs.items():
        if v is not None:
            head.append(f"{k}: {v}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            k, v = line.split(":", 1)
            k, v = k.strip().lower(), v.strip()
            headers[k] = headers[k] + ", " + v if k in headers else v
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    return method, target, version, headers, body


async def handle(reader, writer):
    stats["connections"] += 1
    served = 0
    drop_next = False
    try:
        while True:
            try:
                method, target, version, headers, body = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                return
            stats["requests"] += 1
            served += 1
            if drop_next:
                return  # close without answering: the stale keep-alive race
            path = target.split("?", 1)[0]
            parts = path.strip("/").split("/")
            name, arg = parts[0], (parts[1] if len(parts) > 1 else "")
            w = writer.write
            if name == "stats":
                w(response(200, json.dumps(stats).encode(),
                           {"Content-Type": "application/json"}))
            elif name == "hello":
                w(response(200, b"hello", {"X-Served": str(served)}))
            elif name == "echo":
                out = {"method": method, "target": target, "headers": headers,
                       "body": body.decode("latin-1"), "served": served}
                w(response(200, json.dumps(out).encode(),
                           {"Content-Type": "application/json"}))
            elif name == "delay":
                await asyncio.sleep(int(arg) / 1000)
                w(response(200, f"slept {arg}".encode()))
            elif name == "chunked":
                w(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n")
            elif name == "close-delimited":
                w(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the close")
                await writer.drain()
                return
            elif name == "http10":
                w(b"HTTP/1.0 200 OK\r\n\r\nold style")
                await writer.drain()
                return
            elif name == "head":
                w(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                  + (b"" if method == "HEAD" else b"x" * 1000))
            elif name == "informational":
                w(b"HTTP/1.1 100 Continue\r\n\r\n"
                  b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")
                await writer.drain()
                await asyncio.sleep(0.05)
                w(response(201, b"final", reason="Created"))
            elif name == "mid-close":
                w(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
                await writer.drain()
                return
            elif name == "malformed":
                w(b"HTTP/1.1 2x0 BAD\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            elif name == "garbage":
                w(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
                await writer.drain()
                return
            elif name == "big-header":
                w(response(200, b"ok", {"X-Big": "a" * int(arg or 20000)}))
            elif name == "big-body":
                w(response(200, b"b" * int(arg)))
            elif name == "drip":
                # n chunks, 100 ms apart: slow but never idle for long
                w(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for _ in range(int(arg)):
                    await writer.drain()
                    await asyncio.sleep(0.1)
                    w(b"1\r\n.\r\n")
                w(b"0\r\n\r\n")
            elif name == "never":
                await asyncio.sleep(3600)
            elif name == "close-after":
                w(response(200, b"bye"))
                await writer.drain()
                return
            elif name == "drop-next":
                # Answers (keep-alive), then drops the connection's next
                # request unanswered.
                w(response(200, b"armed"))
                drop_next = True
            elif name == "keep-alive-hint":
                w(response(200, b"hint", {"Keep-Alive": f"timeout={arg or 2}"}))
            else:
                w(response(404, b"no route " + path.encode(), reason="Not Found"))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
