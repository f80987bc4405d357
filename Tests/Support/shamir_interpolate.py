"""Interpolates Shamir shares at x = 0 with SLIP-39's GF(256) code (shamir-mnemonic).

Input (the file named by the first argument): JSON {"cases": [[[x, "hex y"], ...], ...]}. Output: one hex secret per case.
SLIP-39 works in the AES field, x^8 + x^4 + x^3 + x + 1, as our shares do.
"""
import json
import sys

from shamir_mnemonic.shamir import RawShare, _interpolate

with open(sys.argv[1]) as file:
    cases = json.load(file)["cases"]
for case in cases:
    shares = [RawShare(x, bytes.fromhex(y)) for x, y in case]
    print(_interpolate(shares, 0).hex())
