"""Times dcap-qvl (PyPI) on the real SGX quote, for `bench` to print beside our figures.

argv: testdata directory, seconds per round, rounds. Prints "<mode> <median rate>" lines.
"""
import statistics
import sys
import time

import dcap_qvl

directory, seconds, rounds = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
quote = open(f"{directory}/dcap/dcap-qvl/sgx_quote", "rb").read()
text = open(f"{directory}/dcap/dcap-qvl/sgx_quote_collateral.json").read()
now = 1751328000


def rate(body) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        body()
        count += 1
    return count / (time.perf_counter() - start)


collateral = dcap_qvl.QuoteCollateralV3.from_json(text)
full = [rate(lambda: dcap_qvl.verify(quote, dcap_qvl.QuoteCollateralV3.from_json(text), now)) for _ in range(rounds)]
prepared = [rate(lambda: dcap_qvl.verify(quote, collateral, now)) for _ in range(rounds)]
print(f"full {statistics.median(full):.0f}")
print(f"prepared {statistics.median(prepared):.0f}")
