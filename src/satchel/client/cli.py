"""``satchel upload | download | manage | delete | drive … | keys …``: the client commands,
added to the ``satchel`` parser by ``add_client_commands`` (docs/cli.md)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from satchel.client import output
from satchel.client.api import SatchelClient
from satchel.client.config import ClientConfig, load_config
from satchel.client.download import AskPassword
from satchel.client.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, ClientError, UsageError

Command = Callable[["Context", argparse.Namespace], int]


class Context:
    """What every command needs: the configuration, the client, how to print."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.config: ClientConfig = load_config(
            url=args.url,
            api_key=args.api_key,
            v2_keys=getattr(args, "v2_keys", None),
            config_path=args.client_config,
        )
        self.json: bool = args.json
        self.bars_enabled = not args.json and not args.quiet and output.stderr_is_terminal()
        self._client: SatchelClient | None = None

    def client(self, *, need_url: bool = True) -> SatchelClient:
        if self._client is None:
            url = self.config.require_url() if need_url else self.config.url or "http://localhost"
            self._client = SatchelClient(
                url, self.config.api_key, v2_keys=_v2_pair(self.config.v2_keys)
            )
        return self._client

    def bars(self) -> output.Bars:
        return output.Bars(self.bars_enabled)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _v2_pair(text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    parts = text.replace(":", " ").split()
    if len(parts) != 2:
        raise UsageError("--v2-keys is KEY1:KEY2 (the two /api/v2 keys)")
    return parts[0], parts[1]


def ask_password() -> AskPassword | None:
    """A prompt on the terminal, or None when there is no one to ask."""
    if not sys.stdin.isatty():
        return None
    return lambda prompt: getpass.getpass(prompt) or None


def run(args: argparse.Namespace, unknown: list[str]) -> int:
    """Runs the parsed client command; its exit code (docs/cli.md)."""
    if unknown:
        print(f"satchel: unrecognized arguments: {' '.join(unknown)}", file=sys.stderr)
        return EXIT_USAGE
    context: Context | None = None
    try:
        context = Context(args)
        code: int = args.client_command(context, args)
        return code
    except ClientError as exc:
        _report(args, exc.message, exc.exit_code)
        return exc.exit_code
    except OSError as exc:
        # A local file problem: an output path in a file, no room, no permission.
        where = f": {exc.filename}" if exc.filename else ""
        _report(args, f"{exc.strerror or exc}{where}", EXIT_USAGE)
        return EXIT_USAGE
    except KeyboardInterrupt:
        resumable = not getattr(args, "no_resume", False)
        message = "interrupted" + (": run the same command again to resume" if resumable else "")
        _report(args, message, EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    finally:
        if context is not None:
            context.close()


def _report(args: argparse.Namespace, message: str, code: int) -> None:
    if args.json:
        output.print_json({"error": message, "exit_code": code})
    print(f"satchel: {message}", file=sys.stderr)


# -- commands ------------------------------------------------------------------------------


def upload(ctx: Context, args: argparse.Namespace) -> int:
    with ctx.bars() as bars:
        results = ctx.client().upload(
            args.files,
            expires=args.expires,
            password=args.password,
            max_downloads=args.max_downloads,
            private=args.private,
            short=args.short,
            e2e=args.e2e,
            e2e_password=args.e2e_password,
            to_drive_folder=args.to_drive,
            separate=args.separate,
            resumable=not args.no_resume,
            progress=bars,
        )
    if ctx.json:
        output.print_json({"uploads": [r.to_json() for r in results]})
    else:
        output.print_uploads(results)
    return EXIT_OK


def download(ctx: Context, args: argparse.Namespace) -> int:
    ask = ask_password()
    with ctx.bars() as bars:
        result = ctx.client(need_url=False).download(
            args.link,
            args.output,
            password=args.password,
            e2e_password=args.e2e_password,
            resume=not args.no_resume,
            progress=bars,
            ask_password=(lambda text: bars.prompt(ask, text)) if ask else None,
        )
    _print_download(ctx, result.path, result.name, result.size, result.e2e)
    return EXIT_OK


def _print_download(ctx: Context, path: Path, name: str, size: int, e2e: bool) -> None:
    if ctx.json:
        output.print_json({"path": str(path), "name": name, "size": size, "e2e": e2e})
    else:
        note = ", decrypted" if e2e else ""
        print(f"{path} ({output.human_size(size)}{note})")


def manage(ctx: Context, args: argparse.Namespace) -> int:
    info = ctx.client().manage(
        args.token,
        expires=args.expires,
        password=args.password,
        max_downloads=args.max_downloads,
        public=args.public,
    )
    output.print_json(info) if ctx.json else output.print_record(info)
    return EXIT_OK


def delete(ctx: Context, args: argparse.Namespace) -> int:
    ctx.client().delete(args.token)
    output.print_json({"success": True}) if ctx.json else print("deleted")
    return EXIT_OK


def _show(ctx: Context, data: Any, text: Callable[[], None]) -> int:
    if ctx.json:
        output.print_json(data)
    else:
        text()
    return EXIT_OK


def drive_ls(ctx: Context, args: argparse.Namespace) -> int:
    listing = ctx.client().drive.ls(args.folder_id)
    return _show(ctx, listing.to_json(), lambda: output.print_listing(listing))


def drive_search(ctx: Context, args: argparse.Namespace) -> int:
    listing = ctx.client().drive.search(args.query)
    return _show(ctx, listing.to_json(), lambda: output.print_listing(listing))


def drive_trash(ctx: Context, args: argparse.Namespace) -> int:
    drive = ctx.client().drive
    if args.empty:
        done = drive.empty_trash()
        return _show(ctx, done, lambda: print(f"trash emptied ({done['deleted_files']} files)"))
    listing = drive.trash()
    return _show(ctx, listing.to_json(), lambda: output.print_listing(listing, trash=True))


def drive_put(ctx: Context, args: argparse.Namespace) -> int:
    with ctx.bars() as bars:
        files = ctx.client().drive.put(
            args.files, args.folder, resumable=not args.no_resume, progress=bars
        )
    return _show(ctx, {"files": files}, lambda: _file_lines(files))


def _file_lines(files: list[dict[str, Any]]) -> None:
    for file in files:
        print(f"{file['id']}\t{output.human_size(file.get('size'))}\t{file['name']}")


def drive_get(ctx: Context, args: argparse.Namespace) -> int:
    with ctx.bars() as bars:
        result = ctx.client().drive.get(
            args.file_id, args.output, resume=not args.no_resume, progress=bars
        )
    _print_download(ctx, result.path, result.name, result.size, False)
    return EXIT_OK


def drive_info(ctx: Context, args: argparse.Namespace) -> int:
    info = ctx.client().drive.info(args.file_id)
    return _show(ctx, info, lambda: output.print_record(info))


def drive_mkdir(ctx: Context, args: argparse.Namespace) -> int:
    folder = ctx.client().drive.mkdir(args.name, args.parent)
    return _show(ctx, folder, lambda: print(f"{folder['id']}\t{folder['name']}/"))


def drive_mv(ctx: Context, args: argparse.Namespace) -> int:
    moved = ctx.client().drive.mv(args.id, args.to_folder, folder=args.folder)
    return _show(ctx, moved, lambda: print(f"moved to folder {args.to_folder or 'root'}"))


def drive_cp(ctx: Context, args: argparse.Namespace) -> int:
    copied = ctx.client().drive.cp(args.id, args.to_folder)
    return _show(ctx, copied, lambda: print(f"copied: new file {copied.get('id')}"))


def drive_rm(ctx: Context, args: argparse.Namespace) -> int:
    done = ctx.client().drive.rm(args.id, folder=args.folder)
    return _show(ctx, done, lambda: print("moved to the trash (drive restore ID brings it back)"))


def drive_restore(ctx: Context, args: argparse.Namespace) -> int:
    done = ctx.client().drive.restore(args.id, kind=args.type)
    restored = done.get("restored", {})
    return _show(ctx, done, lambda: print(f"restored {restored.get('type')} {restored.get('id')}"))


def keys_list(ctx: Context, args: argparse.Namespace) -> int:
    keys = ctx.client().keys.list()
    return _show(ctx, {"keys": keys}, lambda: output.print_keys(keys))


def keys_create(ctx: Context, args: argparse.Namespace) -> int:
    permissions = [p.strip() for p in args.permissions.split(",") if p.strip()]
    key = ctx.client().keys.create(args.label, permissions, args.allow_ip)

    def text() -> None:
        output.print_keys([key])
        print("the secret, shown this once:")
        print(key["key"])

    return _show(ctx, key, text)


def keys_revoke(ctx: Context, args: argparse.Namespace) -> int:
    ctx.client().keys.revoke(args.key_id)
    return _show(ctx, {"success": True}, lambda: print(f"key {args.key_id} revoked"))


# -- the parser ----------------------------------------------------------------------------


def _folder_id(text: str) -> int | None:
    """A folder id; ``0`` or ``root`` for the root."""
    if text.lower() in {"0", "root"}:
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a folder id: {text!r} (a number, or root)")
    return int(text)


def _exit_1_on_usage_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    def error(message: str) -> NoReturn:
        parser.print_usage(sys.stderr)
        parser.exit(EXIT_USAGE, f"{parser.prog}: error: {message}\n")

    parser.error = error  # type: ignore[method-assign]
    return parser


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("server")
    group.add_argument("--url", help="server URL (env SATCHEL_URL, config key url)")
    group.add_argument("--api-key", help="API key sat_… (env SATCHEL_API_KEY, config api_key)")
    group.add_argument(
        "--config",
        dest="client_config",
        help="client config file (env SATCHEL_CLIENT_CONFIG; default "
        "~/.config/satchel/client.toml)",
    )
    group.add_argument("--json", action="store_true", help="machine-readable output")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return common


def add_client_commands(commands: Any) -> None:
    """Adds the client commands to the ``satchel`` parser's subcommands."""
    common = _common()

    def add(group: Any, name: str, handler: Command, help_: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = group.add_parser(
            name, help=help_, description=help_, parents=[common]
        )
        parser.set_defaults(client_command=handler)
        return _exit_1_on_usage_errors(parser)

    _add_upload(add(commands, "upload", upload, "upload files and print their links"))
    _add_download(add(commands, "download", download, "download a link (resumes, decrypts)"))
    _add_manage(add(commands, "manage", manage, "show or change an upload by its token"))
    gone = add(commands, "delete", delete, "delete an upload by its token")
    gone.add_argument("token", help="management token, or the manage/delete link")
    _add_drive(commands, add)
    _add_keys(commands, add)


def _add_upload(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--expires", help="30m, 6h, 1d (server default), 7d, never (drive only)")
    parser.add_argument("--password", help="downloads need this password")
    parser.add_argument("--max-downloads", type=int, help="delete after this many downloads")
    parser.add_argument("--private", action="store_true", help="only the manage link fetches it")
    parser.add_argument("--short", action="store_true", help="also make a short /s/ link")
    parser.add_argument("--e2e", action="store_true", help="encrypt here; the key goes in #k=")
    parser.add_argument(
        "--e2e-password", metavar="PW", help="encrypt here with a password instead of a key"
    )
    parser.add_argument(
        "--to-drive",
        type=lambda text: _folder_id(text) or 0,
        metavar="FOLDER_ID",
        help="store in the API key's drive, in this folder (0 or root: the root)",
    )
    parser.add_argument(
        "--separate", action="store_true", help="several files: a link each, not one zip"
    )
    parser.add_argument("--no-resume", action="store_true", help="do not keep resume state")


def _add_download(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("link", help="download link, short link or E2E link with #k=…")
    parser.add_argument(
        "-o", "--output", help="file, or directory (existing, or ending in /; default: .)"
    )
    parser.add_argument("--password", help="the file's password (also tried to decrypt it)")
    parser.add_argument("--e2e-password", metavar="PW", help="the password to decrypt it")
    parser.add_argument("--no-resume", action="store_true", help="start from the beginning")


def _add_manage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("token", help="management token, or the manage link")
    parser.add_argument("--expires", help="new lifetime from now: 30m, 6h, 1d, 7d …")
    parser.add_argument("--password", help="set the password ('' removes it)")
    parser.add_argument("--max-downloads", type=int, help="new limit (0 removes it)")
    public = parser.add_mutually_exclusive_group()
    public.add_argument("--public", dest="public", action="store_true", default=None)
    public.add_argument("--private", dest="public", action="store_false")


def _add_drive(commands: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    drive = commands.add_parser("drive", help="your cloud drive (/apiv1; needs an API key)")
    _exit_1_on_usage_errors(drive)
    sub = drive.add_subparsers(title="drive commands", required=True, metavar="COMMAND")

    def cmd(name: str, handler: Command, help_: str) -> argparse.ArgumentParser:
        parser = add(sub, name, handler, help_)
        parser.add_argument(
            "--v2-keys", metavar="KEY1:KEY2", help="/api/v2 keys for mv and cp (SATCHEL_V2_KEYS)"
        )
        return parser

    cmd("ls", drive_ls, "list a folder").add_argument(
        "folder_id", nargs="?", type=_folder_id, help="folder id (default: the root)"
    )
    put = cmd("put", drive_put, "upload files into the drive (resumable)")
    put.add_argument("files", nargs="+", type=Path, metavar="FILE")
    put.add_argument("--folder", type=_folder_id, help="folder id (default: the root)")
    put.add_argument("--no-resume", action="store_true", help="do not keep resume state")
    get = cmd("get", drive_get, "download a drive file (resumes)")
    get.add_argument("file_id", type=int)
    get.add_argument("-o", "--output", help="file, or directory (existing, or ending in /)")
    get.add_argument("--no-resume", action="store_true", help="start from the beginning")
    cmd("info", drive_info, "a file's properties").add_argument("file_id", type=int)
    mkdir = cmd("mkdir", drive_mkdir, "make a folder")
    mkdir.add_argument("name")
    mkdir.add_argument("--parent", type=_folder_id, help="parent folder id (default: the root)")
    for name, handler, help_ in (
        ("mv", drive_mv, "move a file (or --folder) into a folder (via /api/v2)"),
        ("cp", drive_cp, "copy a file into a folder (via /api/v2)"),
    ):
        move = cmd(name, handler, help_)
        move.add_argument("id", type=int)
        move.add_argument("to_folder", type=_folder_id, metavar="FOLDER_ID", help="0 or root")
        if name == "mv":
            move.add_argument("--folder", action="store_true", help="the id is a folder's")
    rm = cmd("rm", drive_rm, "move a file (or --folder) to the trash")
    rm.add_argument("id", type=int)
    rm.add_argument("--folder", action="store_true", help="the id is a folder's")
    restore = cmd("restore", drive_restore, "bring a file or folder back from the trash")
    restore.add_argument("id", type=int)
    restore.add_argument("--type", choices=["file", "folder"], help="when the id is both")
    trash = cmd("trash", drive_trash, "list the trash")
    trash.add_argument("--empty", action="store_true", help="delete everything in it for good")
    cmd("search", drive_search, "find files and folders by name").add_argument("query")


def _add_keys(commands: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="your API keys (needs manage_keys)")
    _exit_1_on_usage_errors(keys)
    sub = keys.add_subparsers(title="keys commands", required=True, metavar="COMMAND")
    add(sub, "list", keys_list, "list the active keys")
    create = add(sub, "create", keys_create, "create a key; prints its secret once")
    create.add_argument("--label", default="")
    create.add_argument(
        "--permissions", default="read", help="comma-separated: read,download,write,delete,…"
    )
    create.add_argument("--allow-ip", action="append", default=[], metavar="CIDR")
    revoke = add(sub, "revoke", keys_revoke, "revoke a key")
    revoke.add_argument("key_id", type=int)
