"""`keras-aigc credentials init DIR`: a local, untrusted test signing chain for C2PA."""

import sys


def add_parser(subparsers):
    p = subparsers.add_parser(
        "credentials", help="Make signing credentials for Content Credentials (C2PA).",
        description="Signing credentials for `keras-aigc sample --sign DIR` and "
                    "`keras-aigc-serve --sign DIR`.")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    init = sub.add_parser(
        "init", help="Write a LOCAL TEST certificate chain (not trusted by anyone) to DIR.",
        description="Writes key.pem, chain.pem (signer + intermediate) and root.pem to DIR. "
                    "For development and tests only: no C2PA validator trusts this chain.")
    init.add_argument("directory")
    init.add_argument("--name", default="keras-aigc local test signer",
                      help="common name of the signing certificate")
    init.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    init.add_argument("--force", action="store_true", help="replace existing credentials")
    p.set_defaults(func=main, parser=p)
    return p


def main(args):
    from keras_aigc_runtime.provenance import UNTRUSTED_NOTICE, init_test_credentials

    if getattr(args, "action", None) != "init":
        args.parser.print_help()
        return 2
    try:
        paths = init_test_credentials(args.directory, common_name=args.name, days=args.days,
                                      overwrite=args.force)
    except FileExistsError as e:
        print(f"keras-aigc credentials: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {paths['key']} (private key), {paths['chain']}, {paths['root']}")
    print(f"WARNING: {UNTRUSTED_NOTICE}", file=sys.stderr)
    return 0
