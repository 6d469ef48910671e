"""Who may open what: each rule decided here, once, for every surface.

- a file: private files for their owner only; a file password, and the password of the
  folder a file is in, asked of everyone else; wrong passwords counted (core.guesses);
- a grant: an /api/v2 download token lets its URL fetch the file as its owner would;
- a folder shared by link: open for anyone (unlisted or public), for its owner when private,
  and, with a password, for whoever holds its access cookie (signed, for a day); a file in
  it that has a password of its own still asks for that password;
- a file's name in a link: only where anyone may open the file;
- a file pass: after the right password on a file's share page, a signed, short-lived value
  (kept in a cookie) stands in for the password, so it never has to travel in a URL.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from satchel.core.actors import Actor
from satchel.core.guesses import GuessLimiter, client_scope
from satchel.core.keyring import MasterKeys
from satchel.core.passwords import verify_password
from satchel.core.v2auth import V2AuthService
from satchel.db.engine import Database
from satchel.db.models import Folder, FolderVisibility, StoredFile
from satchel.db.repositories.drive import DriveRows
from satchel.db.repositories.files import FileRows
from satchel.errors import FolderNotFound, Forbidden, PasswordRequired, WrongPassword

FOLDER_ACCESS = b"folder-access"
FILE_PASS = b"file-pass"
FILE_PASS_LIFETIME = 3600  # seconds: an unlocked share page stays open for an hour
FOLDER_ACCESS_LIFETIME = 86400  # seconds: an unlocked folder stays open for a day
SHARED = (FolderVisibility.UNLISTED, FolderVisibility.PUBLIC)
MAX_SHARE_CODE = 32


class AccessRules:
    def __init__(
        self, db: Database, guesses: GuessLimiter, keys: MasterKeys, v2auth: V2AuthService
    ) -> None:
        self.db = db
        self.guesses = guesses
        self.keys = keys
        self.v2auth = v2auth

    # -- files --------------------------------------------------------------------------

    def check_file(
        self,
        record: StoredFile,
        actor: Actor,
        password: str | None,
        granted: bool = False,
        file_pass: str | None = None,
    ) -> None:
        """Forbidden, PasswordRequired or WrongPassword unless ``actor`` may download it.
        ``granted``: another rule already lets this request in as the owner would be.
        ``file_pass``: a valid one stands in for the passwords (not for being public)."""
        if granted or (actor.user_id is not None and actor.user_id == record.owner_id):
            return
        if not record.is_public:
            raise Forbidden("This file is private")
        folder = self._folder_of(record)
        if file_pass is not None and self._pass_valid(record, folder, file_pass):
            return
        if folder is not None:
            self.check_folder_password(folder, password, actor)
        if record.password_hash:
            if not password:
                raise PasswordRequired()
            self.check_password(record.password_hash, password, f"file:{record.id}", actor)

    def check_own_password(self, record: StoredFile, actor: Actor, password: str | None) -> None:
        """The password the owner gave this one file, asked even where its folder's sharing
        lets the file in (a folder shared by link)."""
        if record.password_hash is None or actor.user_id == record.owner_id:
            return
        if not password:
            raise PasswordRequired("This file has a password of its own")
        self.check_password(record.password_hash, password, f"file:{record.id}", actor)

    def _folder_of(self, record: StoredFile) -> Folder | None:
        if record.folder_id is None:
            return None
        with self.db.read() as session:
            return FileRows(session).folder(record.folder_id)

    def unlock_file(self, record: StoredFile, password: str, actor: Actor) -> str | None:
        """A file pass for the right password (None: the file needs no password); the
        errors of ``check_file`` otherwise, wrong guesses counted as for ``?pw=``."""
        self.check_file(record, actor, password or None)
        folder = self._folder_of(record)
        if record.password_hash is None and (folder is None or not folder.access_password_hash):
            return None
        return self._dated(
            FILE_PASS, lambda until: _pass_claim(record, folder, until), FILE_PASS_LIFETIME
        )

    def _pass_valid(self, record: StoredFile, folder: Folder | None, value: str) -> bool:
        return self._dated_valid(FILE_PASS, lambda until: _pass_claim(record, folder, until), value)

    def _dated(self, purpose: bytes, claim: Callable[[int], bytes], lifetime: int) -> str:
        """``END.MAC``: a MAC under the master keys of ``claim(END)``, END ``lifetime``
        seconds from now, so the end cannot be moved without the keys."""
        until = int(time.time()) + lifetime
        return f"{until}.{self.keys.sign(purpose, claim(until))}"

    def _dated_valid(self, purpose: bytes, claim: Callable[[int], bytes], value: str) -> bool:
        until, _, mac = value.partition(".")
        if not until.isdigit() or len(until) > 12 or int(until) < time.time():
            return False
        return self.keys.verify(purpose, claim(int(until)), mac)

    def check_password(self, stored_hash: str, password: str, scope: str, actor: Actor) -> None:
        """WrongPassword, counted against ``scope`` and the client; RateLimited once either
        has had too many wrong guesses."""
        client = client_scope(actor.user_id, actor.ip)
        claimed = self.guesses.claim(scope, client)
        if not verify_password(stored_hash, password):
            raise WrongPassword()
        self.guesses.right(claimed)

    def check_folder_password(self, folder: Folder, password: str | None, actor: Actor) -> None:
        """A folder's access password, as typed: the MD5 /api/v2 clients send is what its
        stored hash is of. It protects the files in the folder too."""
        if folder.access_password_hash is None:
            return
        if not password:
            raise PasswordRequired("This file is in a password-protected folder")
        given = hashlib.md5(password.encode(), usedforsecurity=False).hexdigest()
        self.check_password(folder.access_password_hash, given, f"folder:{folder.id}", actor)

    def token_grants(self, token: str | None, record: StoredFile) -> bool:
        """An /api/v2 download token for this file, not expired: its URL downloads the file
        as the owner would (private or password-protected ones too)."""
        return bool(token) and self.v2auth.download_token_valid(str(token), record.id)

    def open_to_anyone(self, record: StoredFile) -> bool:
        """Public, with no password of its own or of its folder: its name may be shown to
        whoever has a link."""
        if not record.is_public or record.password_hash:
            return False
        if record.folder_id is None:
            return True
        with self.db.read() as session:
            folder = FileRows(session).folder(record.folder_id)
        return folder is None or folder.access_password_hash is None

    # -- folders shared by link -----------------------------------------------------------

    def shared_folder(self, code: str, actor: Actor) -> Folder:
        """The live folder of ``code`` when it is shared, or private but ``actor`` owns it."""
        if not code.isalnum() or len(code) > MAX_SHARE_CODE:
            raise FolderNotFound()
        with self.db.read() as session:
            found = DriveRows(session).folder_by_share_code(code)
        if found is None or found.trashed_at is not None:
            raise FolderNotFound()
        if found.is_public not in SHARED and actor.user_id != found.owner_id:
            raise FolderNotFound()
        return found

    def may_open(self, folder: Folder, actor: Actor, cookie: str | None) -> bool:
        if folder.access_password_hash is None or actor.user_id == folder.owner_id:
            return True
        if cookie is None:
            return False
        return self._dated_valid(FOLDER_ACCESS, lambda until: _claim(folder, until), cookie)

    def unlock(self, folder: Folder, password: str, actor: Actor) -> str | None:
        """The folder's access cookie value for a right password (None: it needs none);
        WrongPassword or RateLimited otherwise."""
        if folder.access_password_hash is None:
            return None
        self.check_folder_password(folder, password or None, actor)
        return self.access_key(folder)

    def access_key(self, folder: Folder) -> str:
        """Its end and a MAC under the master keys of the folder, its password's hash and that
        end: neither a visitor nor a copy of the database can make one up or make it last
        longer; a new password ends it."""
        return self._dated(
            FOLDER_ACCESS, lambda until: _claim(folder, until), FOLDER_ACCESS_LIFETIME
        )


def _pass_claim(record: StoredFile, folder: Folder | None, until: int) -> bytes:
    """Bound to the file, its passwords' hashes (a new password ends every pass) and a time."""
    folder_hash = folder.access_password_hash if folder is not None else None
    return f"{record.uuid}:{record.password_hash}:{folder_hash}:{until}".encode()


def _claim(folder: Folder, until: int) -> bytes:
    return f"{folder.share_code}:{folder.access_password_hash}:{until}".encode()
