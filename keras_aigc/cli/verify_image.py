"""`keras-aigc verify-image FILE...`: check the Content Credentials of generated PNGs."""

import json
import sys


def add_parser(subparsers):
    p = subparsers.add_parser(
        "verify-image", help="Verify the C2PA Content Credentials of PNG files.",
        description="Reports for each file whether it is valid (signature and hashes check "
                    "out), tampered (a manifest whose hashes or signature fail) or unsigned, "
                    "and its claims. Exit status 0 only when every file is valid (and, with "
                    "--trust, signed by a certificate chaining to a trusted root).")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--trust", default=None, metavar="ROOT.pem",
                   help="PEM root certificate(s) you trust; the signer must chain to one")
    p.add_argument("--json", action="store_true", help="print one JSON report per file")
    p.set_defaults(func=main)
    return p


def main(args):
    from keras_aigc_runtime.provenance import verify_png

    anchors = None
    if args.trust:
        with open(args.trust) as f:
            anchors = f.read()
    all_ok = True
    for path in args.files:
        try:
            result = verify_png(path, trust_anchors=anchors)
        except (OSError, ValueError) as e:
            print(f"{path}: error: {e}")
            all_ok = False
            continue
        all_ok &= result.ok
        if args.json:
            print(json.dumps(result.to_dict(), sort_keys=True))
            continue
        trust = {None: "signer not checked against a trust list (pass --trust ROOT.pem)",
                 True: "signer trusted", False: "signer NOT trusted"}[result.trusted]
        line = f"{path}: {result.status}"
        if result.status != "unsigned":
            line += f" ({trust}; issuer: {result.signer})"
        print(line)
        if result.claims:
            print("  claims: " + json.dumps(result.claims, sort_keys=True))
            if result.status == "unsigned":
                print("  (unsigned text chunks: anyone can write these; they prove nothing)")
        for failure in result.failures:
            print(f"  failure: {failure}")
    sys.stdout.flush()
    return 0 if all_ok else 1
