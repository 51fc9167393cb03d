"""The room model: room types and their policy, the handler-facing Room, executors and workers."""

from __future__ import annotations

from roomwire.runtime.machine import RoomMachine
from roomwire.runtime.policy import RoomPolicy
from roomwire.runtime.room import Player, Room
from roomwire.runtime.roomtype import RoomType
from roomwire.runtime.worker import Worker

__all__ = ["Player", "Room", "RoomMachine", "RoomPolicy", "RoomType", "Worker"]
