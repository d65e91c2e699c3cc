"""Bounded waits on aiomqtt clients, so that a test fails instead of hanging."""

from __future__ import annotations

import asyncio

import aiomqtt

__all__ = ["collect", "messages_within", "next_message"]


async def next_message(client: aiomqtt.Client, timeout: float = 5.0) -> aiomqtt.Message:
    """The next message the client receives, or ``TimeoutError`` after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        async for message in client.messages:
            return message
    raise AssertionError("the message iterator ended")  # aiomqtt's never does; for type checkers


async def collect(
    client: aiomqtt.Client, count: int, timeout: float = 5.0
) -> list[aiomqtt.Message]:
    """The next ``count`` messages; ``TimeoutError`` if they do not all come in time."""
    got: list[aiomqtt.Message] = []
    async with asyncio.timeout(timeout):
        async for message in client.messages:
            got.append(message)
            if len(got) == count:
                break
    return got


async def messages_within(client: aiomqtt.Client, wait: float = 1.0) -> list[aiomqtt.Message]:
    """Whatever arrives within ``wait`` seconds (a test asserts it is empty, or what it is)."""
    got: list[aiomqtt.Message] = []
    try:
        async with asyncio.timeout(wait):
            async for message in client.messages:
                got.append(message)
    except TimeoutError:
        pass
    return got
