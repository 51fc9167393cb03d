"""A tiny keep-alive HTTP/1.1 JSON client for roomwire's lobby routes (load generator setup only)."""

from __future__ import annotations

import asyncio
import json
from typing import Any


class LobbyError(Exception):
    """The lobby answered with a non-2xx status."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status = status
        self.body = body


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer


class LobbyClient:
    """POSTs JSON over a small pool of persistent connections to one host and port."""

    def __init__(self, host: str, port: int, pool_size: int = 8, timeout_s: float = 10.0) -> None:
        self._host, self._port, self._timeout_s = host, port, timeout_s
        self._idle: asyncio.Queue[_Conn | None] = asyncio.Queue()
        for _ in range(pool_size):
            self._idle.put_nowait(None)  # a free slot with no connection opened yet

    async def post(self, path: str, body: dict[str, Any], token: str | None = None) -> Any:
        """POST `body` as JSON and return the decoded JSON answer; raises LobbyError on non-2xx."""
        conn = await self._idle.get()
        try:
            if conn is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self._host, self._port), self._timeout_s
                )
                conn = _Conn(reader, writer)
            status, headers, data = await asyncio.wait_for(
                self._request(conn, path, json.dumps(body).encode(), token), self._timeout_s
            )
            if headers.get("connection", "").lower() == "close":
                conn.writer.close()
                conn = None
        except BaseException:
            if conn is not None:
                conn.writer.close()
            self._idle.put_nowait(None)
            raise
        self._idle.put_nowait(conn)
        if not 200 <= status < 300:
            raise LobbyError(status, data)
        return json.loads(data) if data else None

    async def _request(
        self, conn: _Conn, path: str, payload: bytes, token: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        head = [
            f"POST {path} HTTP/1.1",
            f"Host: {self._host}:{self._port}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
        ]
        if token is not None:
            head.append(f"Authorization: Bearer {token}")
        conn.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        raw = await conn.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await conn.reader.readline()).split(b";")[0], 16)
                chunk = await conn.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            return status, headers, b"".join(parts)
        length = int(headers.get("content-length", "0"))
        return status, headers, await conn.reader.readexactly(length)

    async def aclose(self) -> None:
        """Close every pooled connection."""
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            if conn is not None:
                conn.writer.close()
