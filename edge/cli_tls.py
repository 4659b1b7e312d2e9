"""`forecourt tls ...`: the station's HTTPS certificate (edge/tls.py, docs/install.md "HTTPS").

- `forecourt tls cert --dir /etc/forecourt/tls [--owner forecourt]`: the station's CA when there
  is none yet, then a certificate for this PC's host name and LAN addresses (plus any
  `--name` / `--address` given); `--if-needed` keeps a certificate that still covers them and
  has more than 60 days left (the package runs it at every install and upgrade).
- `forecourt tls show --dir /etc/forecourt/tls`: what the certificate covers, until when, and
  the fingerprints to compare on a tablet.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def cmd_tls_cert(args: argparse.Namespace) -> int:
    from edge.tls import TlsError, ensure, station_addresses, station_names

    try:
        extra = [ipaddress.ip_address(a) for a in args.address]
    except ValueError as exc:
        print(f"--address: {exc}", file=sys.stderr)
        return EXIT_USAGE
    names = [] if args.only else list(station_names())
    addresses = [] if args.only else list(station_addresses())
    names += [n.lower().rstrip(".") for n in args.name]
    addresses += extra
    try:
        issued = ensure(Path(args.dir), names=names, addresses=addresses,
                        station=args.station or (names[0] if names else "station"),
                        owner=args.owner, if_needed=args.if_needed)
    except (TlsError, OSError) as exc:
        print(f"no certificate made: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if issued is None:
        print(f"{Path(args.dir) / 'station.crt'} still covers this station; kept")
        return EXIT_OK
    if issued.new_ca:
        print(f"new station CA {issued.ca}: trust it once on every cashier PC and tablet "
              "(docs/install.md, HTTPS)")
    print(f"{issued.cert} for {', '.join([*issued.names, *map(str, issued.addresses)])}, "
          f"valid until {issued.not_after.date().isoformat()}")
    print("restart the station to use it: systemctl restart forecourt")
    return EXIT_OK


def cmd_tls_show(args: argparse.Namespace) -> int:
    from edge.tls import CA_CERT, CERT, TlsError, cert_names, fingerprint, load_cert

    folder = Path(args.dir)
    try:
        for name, what in ((CERT, "certificate"), (CA_CERT, "station CA")):
            cert = load_cert(folder / name)
            print(f"{what}: {folder / name}")
            print(f"  subject     {cert.subject.rfc4514_string()}")
            print(f"  valid       {cert.not_valid_before_utc.date()} .. "
                  f"{cert.not_valid_after_utc.date()}")
            print(f"  sha256      {fingerprint(cert)}")
            if name == CERT:
                print(f"  names       {', '.join(cert_names(folder / name))}")
    except TlsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def add_parsers(sub: Any) -> None:
    tls = sub.add_parser("tls", help="the station's HTTPS certificate and its CA")
    tls_sub = tls.add_subparsers(dest="tls_command", required=True, metavar="ACTION")
    cert = tls_sub.add_parser(
        "cert", help="a certificate for this PC's names and LAN addresses, from the station's "
        "CA (made the first time)")
    cert.add_argument("--dir", required=True, help="folder for ca.crt, ca.key, station.crt, "
                      "station.key (the package uses /etc/forecourt/tls)")
    cert.add_argument("--name", action="append", default=[], help="another host name "
                      "(repeatable)")
    cert.add_argument("--address", action="append", default=[], help="another IP address "
                      "(repeatable)")
    cert.add_argument("--only", action="store_true", help="only the names and addresses "
                      "given, not this PC's own")
    cert.add_argument("--owner", help="the user that reads station.key (the service's: "
                      "forecourt)")
    cert.add_argument("--station", help="the station id, in the CA's name")
    cert.add_argument("--if-needed", action="store_true", help="keep a certificate that still "
                      "covers the names and has more than 60 days left")
    cert.set_defaults(func=cmd_tls_cert)
    show = tls_sub.add_parser("show", help="what the certificate covers, until when, and its "
                              "fingerprints")
    show.add_argument("--dir", required=True)
    show.set_defaults(func=cmd_tls_show)
