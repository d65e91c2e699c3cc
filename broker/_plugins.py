"""amqtt plugins for EPIC's embedded broker: who may connect, and which topics they may use.

Why our own rather than amqtt's packaged ones (amqtt 0.12):

- ``AnonymousAuthPlugin(allow_anonymous=True)`` marks *every* session anonymous, and amqtt
  neither queues QoS 1/2 messages for an anonymous session nor keeps it after it disconnects
  (``Broker._run_broadcast``, ``Broker._session_monitor``), so ``clean_session=False`` would do
  nothing. :class:`OpenAuthPlugin` lets everyone in without that mark.
- ``FileAuthPlugin`` reads Argon2 and ``$6$`` crypt hashes but not Mosquitto 2's ``$7$``;
  :class:`PasswordFileAuthPlugin` reads all three, so ``epic broker credentials``' password
  file works for both brokers.
- ``TopicAccessControlListPlugin`` takes per-user lists in amqtt's YAML config, treats an empty
  publish list as "publish anything", and knows no ``deny``; :class:`AclFilePlugin` applies a
  Mosquitto ACL file (``epic.broker.acl``) with Mosquitto's meaning.

The files are parsed before the broker is built (``epic.broker.embedded``), so a bad file fails with
its name and line instead of amqtt's generic ``PluginInitError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from pwdlib.hashers.argon2 import Argon2Hasher

from epic.broker.acl import Acl, AclEntry
from epic.broker.passwords import is_mosquitto_hash, verify_password

__all__ = [
    "AclFilePlugin",
    "OpenAuthPlugin",
    "PasswordFileAuthPlugin",
    "check_password",
    "hash_supported",
]

_ARGON2 = Argon2Hasher()


def hash_supported(encoded: str) -> bool:
    """True for the hashes :class:`PasswordFileAuthPlugin` can check: ``$7$`` and Argon2."""
    return is_mosquitto_hash(encoded) or _ARGON2.identify(encoded)


class OpenAuthPlugin(BaseAuthPlugin):
    """Everyone may connect, and their persistent sessions are kept (see the module's notes)."""

    @dataclass
    class Config:
        """No options."""

    async def authenticate(self, *, session: Session) -> bool | None:
        return True


class PasswordFileAuthPlugin(BaseAuthPlugin):
    """Users and password hashes (``$7$`` or Argon2); no username or a wrong password: refused."""

    @dataclass
    class Config:
        users: dict[str, str] = field(default_factory=dict)
        """Username to hash, as read from the file by ``epic.broker.embedded.read_users``."""

    async def authenticate(self, *, session: Session) -> bool | None:
        users: dict[str, str] = self.context.config.users  # type: ignore[union-attr]
        return check_password(users, session.username, session.password)


def check_password(users: dict[str, str], username: str | None, password: str | None) -> bool:
    """True for a known user with the right password (``$7$`` or Argon2 hash)."""
    encoded = users.get(username or "")
    if encoded is None:
        return False
    if is_mosquitto_hash(encoded):
        return verify_password(password or "", encoded)
    return _ARGON2.verify(password or "", encoded)


class AclFilePlugin(BaseTopicPlugin):
    """Mosquitto's ACL rules: read grants subscribe and delivery, write grants publish."""

    @dataclass
    class Config:
        read: dict[str, list[str]] = field(default_factory=dict)
        write: dict[str, list[str]] = field(default_factory=dict)
        deny: dict[str, list[str]] = field(default_factory=dict)
        anonymous: dict[str, list[str]] = field(default_factory=dict)
        """``read``/``write``/``deny`` lists for clients without a username."""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        config = self.context.config
        acl = Acl()
        for user in {*config.read, *config.write, *config.deny}:  # type: ignore[union-attr]
            acl.entries[user] = AclEntry(
                read=config.read.get(user, []),  # type: ignore[union-attr]
                write=config.write.get(user, []),  # type: ignore[union-attr]
                deny=config.deny.get(user, []),  # type: ignore[union-attr]
            )
        anonymous = config.anonymous  # type: ignore[union-attr]
        acl.entries[None] = AclEntry(
            read=anonymous.get("read", []),
            write=anonymous.get("write", []),
            deny=anonymous.get("deny", []),
        )
        self._acl = acl

    @staticmethod
    def config_for(acl: Acl) -> dict[str, dict[str, list[str]]]:
        """The plugin's config (plain dicts, as amqtt's loader wants) for a parsed ACL."""
        named = {user: entry for user, entry in acl.entries.items() if user is not None}
        anonymous = acl.entries.get(None, AclEntry())
        return {
            "read": {user: entry.read for user, entry in named.items()},
            "write": {user: entry.write for user, entry in named.items()},
            "deny": {user: entry.deny for user, entry in named.items()},
            "anonymous": {
                "read": anonymous.read,
                "write": anonymous.write,
                "deny": anonymous.deny,
            },
        }

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        if not topic:
            return False
        username = session.username if session is not None and session.username else None
        return self._acl.allows(username, topic, write=action == Action.PUBLISH)
