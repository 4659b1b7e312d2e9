"""`forecourt user ...`: local users from the station PC's command line.

Every change is written to the audit log (actor `cli`, with the operating-system user who ran
it) and reaches a running daemon without a restart: a new role or PIN, or a disabled user, ends
that user's sessions within a second (edge/api/auth.py), and `unlock` lifts their login
throttling at the next login anyone tries (edge/api/logins.py).

PINs: `--pin-stdin` reads the PIN from standard input (a pipe, a file); with neither option and
a terminal, the PIN is asked twice without echo. `--pin PIN` still works but puts the PIN where
`ps` and the shell's history show it: a warning says so.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from edge.config import StationConfig
    from edge.store import Store

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

Loader = Callable[..., "StationConfig"]

PIN_ON_COMMAND_LINE = (
    "warning: a PIN given with --pin shows in `ps` and in the shell's history; "
    "use --pin-stdin (or leave both out at a terminal to be asked)")


def os_user() -> str:
    """Who ran the command: the person behind sudo when there is one."""
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def read_pin(args: argparse.Namespace, stdin: TextIO, stderr: TextIO) -> str | None:
    """The PIN the command was given, or None (a message printed) when there is none."""
    if args.pin is not None and args.pin != "-":
        print(PIN_ON_COMMAND_LINE, file=stderr)
        pin: str = args.pin
        return pin
    if args.pin_stdin or args.pin == "-":
        return stdin.readline().strip()
    if not stdin.isatty():
        print("no PIN: give it on standard input with --pin-stdin", file=stderr)
        return None
    first = getpass.getpass("PIN (4-12 digits): ")
    if getpass.getpass("the same PIN again: ") != first:
        print("the two PINs differ; nothing was changed", file=stderr)
        return None
    return first


def _audit(store: Store, action: str, name: str, details: dict[str, str] | None = None
           ) -> None:
    from edge.audit import CLI

    store.audit_append(actor=CLI, action=action, outcome="ok", target=name,
                       details={"os_user": os_user(), **(details or {})})


def cmd_user_add(args: argparse.Namespace, load: Loader) -> int:
    from domain.model import Role
    from edge.store import Store, StoreError

    config = load(args.config, check_files=False)
    try:
        role = Role(args.role)
    except ValueError:
        print(f"unknown role {args.role!r}; one of: {', '.join(r.value for r in Role)}",
              file=sys.stderr)
        return EXIT_USAGE
    pin = read_pin(args, sys.stdin, sys.stderr)
    if pin is None:
        return EXIT_USAGE
    try:
        with Store.open(config.storage.path) as store:
            try:
                user = store.upsert_user(args.name, role=role, pin=pin)
            except ValueError as exc:  # a bad PIN or name (UserNameRefused)
                print(f"cannot save user {args.name!r}: {exc}", file=sys.stderr)
                return EXIT_USAGE
            _audit(store, "user.save", user.name, {"role": user.role.value})
    except StoreError as exc:
        print(f"cannot save user {args.name!r}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"user {user.name} saved with role {user.role}")
    return EXIT_OK


def _change(args: argparse.Namespace, load: Loader, action: str,
            change: Callable[[Store, str], str]) -> int:
    from edge.store import Store, StoreError, UnknownUser

    config = load(args.config, check_files=False)
    try:
        with Store.open(config.storage.path) as store:
            try:
                said = change(store, args.name)
            except UnknownUser as exc:
                print(str(exc), file=sys.stderr)
                return EXIT_FAILED
            _audit(store, action, args.name)
    except StoreError as exc:
        print(f"cannot change user {args.name!r}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(said)
    return EXIT_OK


def cmd_user_disable(args: argparse.Namespace, load: Loader) -> int:
    def disable(store: Store, name: str) -> str:
        store.set_user_disabled(name, True)
        return f"user {name} disabled: their sessions end and they cannot log in"
    return _change(args, load, "user.disable", disable)


def cmd_user_enable(args: argparse.Namespace, load: Loader) -> int:
    def enable(store: Store, name: str) -> str:
        store.set_user_disabled(name, False)
        return f"user {name} enabled"
    return _change(args, load, "user.enable", enable)


def cmd_user_unlock(args: argparse.Namespace, load: Loader) -> int:
    def unlock(store: Store, name: str) -> str:
        store.request_user_unlock(name)
        return (f"login throttling of {name} lifted (a running daemon applies it at the next "
                "login)")
    return _change(args, load, "user.unlock", unlock)


def cmd_user_list(args: argparse.Namespace, load: Loader) -> int:
    from edge.store import Store

    config = load(args.config, check_files=False)
    with Store.open(config.storage.path) as store:
        accounts = store.user_accounts()
    for account in accounts:
        state = "disabled" if account.disabled_at is not None else "enabled"
        print(f"{account.name}\t{account.role.value}\t{state}")
    if not accounts:
        print("no users yet")
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], load: Loader) -> None:
    """`forecourt user ...` under the command line's subcommands."""
    user = sub.add_parser("user", help="local users")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")

    add = user_sub.add_parser("add", help="create or update a user (a new PIN or role ends "
                              "their sessions)")
    add.add_argument("name")
    add.add_argument("--role", required=True, help="attendant, cashier, manager, finance, admin")
    pin = add.add_mutually_exclusive_group()
    pin.add_argument("--pin-stdin", action="store_true",
                     help="read the PIN (4-12 digits) from standard input")
    pin.add_argument("--pin", help="the PIN on the command line (unsafe: `ps` shows it), or - "
                     "for standard input; leave out at a terminal to be asked")
    add.add_argument("--config", required=True)
    add.set_defaults(func=lambda args: cmd_user_add(args, load))

    for action, func, text in (
            ("disable", cmd_user_disable, "disable a user: their sessions end, logins refused"),
            ("enable", cmd_user_enable, "enable a disabled user again"),
            ("unlock", cmd_user_unlock, "lift a user's login throttling (wrong PINs)")):
        parser = user_sub.add_parser(action, help=text)
        parser.add_argument("name")
        parser.add_argument("--config", required=True)
        parser.set_defaults(func=lambda args, f=func: f(args, load))

    listing = user_sub.add_parser("list", help="the users, their roles, enabled or disabled")
    listing.add_argument("--config", required=True)
    listing.set_defaults(func=lambda args: cmd_user_list(args, load))
