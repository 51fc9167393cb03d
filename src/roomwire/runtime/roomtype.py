"""RoomType: a kind of room, its message handlers, lifecycle hooks and queue policy."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from roomwire.errors import SetupError
from roomwire.runtime.policy import RoomPolicy

F = TypeVar("F", bound=Callable[..., Any])

HOOKS = ("create", "join", "leave", "disconnect", "reconnect", "dispose", "tick")


@dataclass(frozen=True, slots=True)
class MessageHandler:
    """A handler for one message type; `schema` is the type its message is converted to (or None)."""

    type: str
    fn: Callable[..., Any]
    schema: Any
    is_async: bool


def _message_schema(fn: Callable[..., Any]) -> Any:
    """The annotation of the handler's third parameter (room, player, msg), or None for raw data."""
    params = list(inspect.signature(fn).parameters.values())
    if len(params) < 3:
        raise SetupError(
            f"message handler {fn.__qualname__} must take (room, player, msg); it takes {len(params)} "
            "parameters"
        )
    try:
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError) as exc:
        raise SetupError(f"cannot resolve the type hints of {fn.__qualname__}: {exc}") from exc
    schema = hints.get(params[2].name)
    return None if schema is Any else schema


class RoomType:
    """A room type: declare handlers with its decorators, each the twin of an explicit add_* call."""

    def __init__(self, name: str, policy: RoomPolicy, *, sync: bool = False) -> None:
        self.name = name
        self.policy = policy
        # Synced state (issue #12): clients mirror `room.state` (or `view`'s part of it).
        self.sync = sync
        self.view_fn: Callable[..., Any] | None = None
        # Relay rooms (runtime/relay.py): the handler of every message type without its own.
        self.fallback_handler: Callable[[str], MessageHandler] | None = None
        self.handlers: dict[str, MessageHandler] = {}
        self.hooks: dict[str, Callable[..., Any]] = {}
        # Timer callbacks seen in this process, by import path (a cache for recovery by name).
        self.timer_functions: dict[str, Callable[..., Any]] = {}
        self._frozen = False

    def __repr__(self) -> str:
        return f"RoomType({self.name!r}, {self.policy!r})"

    def freeze(self) -> None:
        """Refuse further registrations (called when the app starts serving)."""
        self._frozen = True

    def _check_open(self, what: str) -> None:
        if self._frozen:
            raise SetupError(f"cannot add {what} to room type {self.name!r}: the app is already serving")

    def add_message_handler(self, msg_type: str, fn: Callable[..., Any]) -> None:
        """Register `fn(room, player, msg)` for messages of `msg_type`."""
        self._check_open(f"message handler {msg_type!r}")
        if not msg_type or not isinstance(msg_type, str):
            raise SetupError(f"message type must be a non-empty string, got {msg_type!r}")
        if msg_type in self.handlers:
            raise SetupError(f"room type {self.name!r} already has a handler for {msg_type!r}")
        self.handlers[msg_type] = MessageHandler(
            msg_type, fn, _message_schema(fn), inspect.iscoroutinefunction(fn)
        )

    def handler_for(self, msg_type: str) -> MessageHandler | None:
        """The handler of `msg_type`: its own, the relay's (relay rooms), or None."""
        handler = self.handlers.get(msg_type)
        if handler is None and self.fallback_handler is not None:
            return self.fallback_handler(msg_type)
        return handler

    def message(self, msg_type: str) -> Callable[[F], F]:
        """Decorator: `@arena.message("move")` ≡ `arena.add_message_handler("move", fn)`."""

        def register(fn: F) -> F:
            self.add_message_handler(msg_type, fn)
            return fn

        return register

    def add_hook(self, hook: str, fn: Callable[..., Any]) -> None:
        """Register a lifecycle hook: create(room, options), join(room, player),
        leave(room, player, reason), disconnect(room, player), reconnect(room, player),
        dispose(room), tick(room, dt_s)."""
        self._check_open(f"hook {hook!r}")
        if hook not in HOOKS:
            raise SetupError(f"unknown hook {hook!r}; hooks are {', '.join(HOOKS)}")
        if hook in self.hooks:
            raise SetupError(f"room type {self.name!r} already has a {hook} hook")
        if hook == "tick" and self.policy.tick_rate_hz is None:
            raise SetupError(f"room type {self.name!r} has a tick hook but no tick_rate_hz in its policy")
        self.hooks[hook] = fn

    def on_create(self, fn: F) -> F:
        """Decorator for `create(room, options)`: set up the initial state."""
        self.add_hook("create", fn)
        return fn

    def on_join(self, fn: F) -> F:
        """Decorator for `join(room, player)`: raise RejectedError to refuse the player."""
        self.add_hook("join", fn)
        return fn

    def on_leave(self, fn: F) -> F:
        """Decorator for `leave(room, player, reason)`; reason is left, disconnected, timed_out or kicked."""
        self.add_hook("leave", fn)
        return fn

    def on_disconnect(self, fn: F) -> F:
        """Decorator for `disconnect(room, player)`: the connection dropped; the seat is kept a while."""
        self.add_hook("disconnect", fn)
        return fn

    def on_reconnect(self, fn: F) -> F:
        """Decorator for `reconnect(room, player)`: back within the grace (send them a fresh snapshot)."""
        self.add_hook("reconnect", fn)
        return fn

    def on_dispose(self, fn: F) -> F:
        """Decorator for `dispose(room)`: the room is ending; last chance to broadcast."""
        self.add_hook("dispose", fn)
        return fn

    def on_tick(self, fn: F) -> F:
        """Decorator for `tick(room, dt_s)`, called at the policy's tick_rate_hz."""
        self.add_hook("tick", fn)
        return fn

    # Decorator without the on_ prefix, as in the brief's examples.
    tick = on_tick

    def set_view(self, fn: Callable[..., Any]) -> None:
        """Use `fn(room, player)` for what one player's mirror of the state holds; turns sync on.

        It must return plain data built from `room.state` (it is diffed after every step, so it
        must not change anything). A player never receives any part of the state it leaves out.
        """
        self._check_open("a view")
        if self.view_fn is not None:
            raise SetupError(f"room type {self.name!r} already has a view")
        self.view_fn = fn
        self.sync = True

    def view(self, fn: F) -> F:
        """Decorator: `@arena.view` ≡ `arena.set_view(fn)`."""
        self.set_view(fn)
        return fn
