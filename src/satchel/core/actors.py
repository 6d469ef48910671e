"""Who is asking: a guest at an address, or a member (a logged-in user) at an address.

There is no third kind: a member always carries its user, so whatever depends on the account
(its package, its drive) is never guessed from an id alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from satchel.db.models import User


@dataclass(frozen=True)
class Guest:
    ip: str

    @property
    def user_id(self) -> None:
        return None

    @property
    def user(self) -> None:
        return None


@dataclass(frozen=True)
class Member:
    ip: str
    user: User = field(compare=False)
    # Known by a browser's session cookie (not an API key): what such a request changes needs
    # the page's CSRF token too.
    by_session: bool = field(default=False, compare=False)

    @property
    def user_id(self) -> int:
        return self.user.id


Actor = Guest | Member


def member(user: User, ip: str = "") -> Member:
    return Member(ip=ip, user=user)
