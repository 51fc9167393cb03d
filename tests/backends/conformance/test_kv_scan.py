"""Conformance: `kv_scan` lists the live kv entries under a prefix (what `roomwire status` reads)."""

from __future__ import annotations

from conformance_kit import eventually, new_namespace

from roomwire.backends import Backend, backend_from_url


async def test_kv_scan_returns_the_live_entries_under_a_prefix(backend: Backend) -> None:
    assert await backend.kv_scan("w:") == {}
    await backend.kv_set("w:1", b"one")
    await backend.kv_set("w:2", b"\x00two", ttl_s=30)
    await backend.kv_set("w", b"not under w:")
    await backend.kv_set("x:1", b"other prefix")

    assert await backend.kv_scan("w:") == {"w:1": b"one", "w:2": b"\x00two"}
    everything = {"w:1": b"one", "w:2": b"\x00two", "w": b"not under w:", "x:1": b"other prefix"}
    assert await backend.kv_scan("") == everything
    await backend.kv_delete("w:1")
    assert await backend.kv_scan("w:") == {"w:2": b"\x00two"}


async def test_kv_scan_treats_glob_characters_in_the_prefix_literally(backend: Backend) -> None:
    await backend.kv_set("a*[b]?\\:1", b"literal")
    await backend.kv_set("aXbY:1", b"would match a glob")
    assert await backend.kv_scan("a*[b]?\\:") == {"a*[b]?\\:1": b"literal"}


async def test_kv_scan_leaves_expired_entries_out(backend: Backend) -> None:
    await backend.kv_set("t:short", b"v", ttl_s=0.2)
    await backend.kv_set("t:long", b"v", ttl_s=30)

    async def only_long_left() -> bool:
        return await backend.kv_scan("t:") == {"t:long": b"v"}

    await eventually(only_long_left)  # expiry is time-based: poll until the ttl has passed


async def test_kv_scan_sees_only_its_own_namespace(backend: Backend, engine_url: str) -> None:
    neighbour = backend_from_url(engine_url, namespace=new_namespace())
    await neighbour.open()
    try:
        await backend.kv_set("w:1", b"mine")
        await neighbour.kv_set("w:1", b"theirs")
        await neighbour.kv_set("w:2", b"theirs too")
        assert await backend.kv_scan("w:") == {"w:1": b"mine"}
        assert await neighbour.kv_scan("w:") == {"w:1": b"theirs", "w:2": b"theirs too"}
    finally:
        await neighbour.drop_all()
        await neighbour.aclose()
