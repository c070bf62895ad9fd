"""`edge-agent keys`: create a site signing key and export its public half (JWK, JWK Set) for agencies."""

from __future__ import annotations

__all__ = ["register"]

import argparse
from pathlib import Path
from typing import Any

from agent.delivery import jws
from agent.delivery.signing import generate_key_file, load_signing_key, write_public_key_files

_EXPORT_DESCRIPTION = """\
Write the public half of a site signing key for the agencies that receive the site's alerts:

  edge-agent keys export-public --key var/keys/site-signing.pem --out DIR

writes DIR/site-signing.jwk (the public key as one RFC 7517 JWK: kty OKP, crv Ed25519, x,
kid, alg Ed25519, use sig) and DIR/site-signing.jwks.json (a JWK Set holding that key, for
JOSE libraries that read a key set); --pem also writes DIR/site-signing.pub.pem (PEM,
SubjectPublicKeyInfo). The file names follow the key file's name unless --name is given.
An agency lists the .jwk (jwk_file) under the site in its trust registry. Give --kid when
the site config sets signing.key_id; the default kid is the key's RFC 7638 thumbprint, as
the agent itself uses."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="create Ed25519 alert-signing keys and export their public JWKs")
    actions = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    gen = actions.add_parser("generate", help="write a new private key (mode 0600; never overwrites)")
    gen.add_argument("--out", type=Path, required=True, help="private key file to create (PEM)")
    gen.set_defaults(handler=_generate)

    export = actions.add_parser(
        "export-public",
        help="write the public key as NAME.jwk and NAME.jwks.json for an agency's trust registry",
        description=_EXPORT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("--key", type=Path, required=True, help="private key file (PEM)")
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory to write the files into")
    export.add_argument("--name", default=None, help="file name without suffix (default: the key file's name)")
    export.add_argument(
        "--kid", default=None, help="key id, when the site config sets signing.key_id (default: RFC 7638 thumbprint)"
    )
    export.add_argument("--pem", action="store_true", help="also write NAME.pub.pem (PEM, SubjectPublicKeyInfo)")
    export.set_defaults(handler=_export)


def _generate(args: argparse.Namespace) -> int:
    key = generate_key_file(args.out)
    print(f"{args.out}\tkid={jws.key_id_for(key.public_key())}")
    return 0


def _export(args: argparse.Namespace) -> int:
    key = load_signing_key(args.key)
    files = write_public_key_files(key, args.out, args.name or args.key.stem, kid=args.kid, pem=args.pem)
    for path in (files.jwk, files.jwk_set, files.pem):
        if path is not None:
            print(f"{path}\tkid={files.kid}")
    return 0
