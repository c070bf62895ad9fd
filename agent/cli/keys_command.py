"""`edge-agent keys`: create a site signing key and export its public half for agencies."""

from __future__ import annotations

__all__ = ["register"]

import argparse
from pathlib import Path
from typing import Any

from agent.delivery.signing import (
    export_public_key,
    generate_key_file,
    key_id_for,
    load_signing_key,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="create and export Ed25519 alert-signing keys")
    actions = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    gen = actions.add_parser("generate", help="write a new private key (mode 0600; never overwrites)")
    gen.add_argument("--out", type=Path, required=True, help="private key file to create (PEM)")
    gen.set_defaults(handler=_generate)

    export = actions.add_parser(
        "export-public", help="write <kid>.pem, the public key an agency puts in its trust directory"
    )
    export.add_argument("--key", type=Path, required=True, help="private key file (PEM)")
    export.add_argument("--out", type=Path, required=True, help="directory to write <kid>.pem into")
    export.add_argument(
        "--kid", default=None, help="key id, when the site config sets signing.key_id (default: derived)"
    )
    export.set_defaults(handler=_export)


def _generate(args: argparse.Namespace) -> int:
    key = generate_key_file(args.out)
    print(f"{args.out}\tkid={key_id_for(key.public_key())}")
    return 0


def _export(args: argparse.Namespace) -> int:
    key = load_signing_key(args.key)
    path = export_public_key(key, args.out, args.kid)
    print(path)
    return 0
