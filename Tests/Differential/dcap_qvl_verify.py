"""Verify quotes with the PyPI package dcap-qvl, for the differential test.

Reads a JSON list of cases from the file named by argv[1]:
  {"name", "quote": path, "collateral": path (dcap-qvl JSON bundle), "time": unix seconds, "root": path to DER or null}
and prints one JSON object per case: {"name", "ok", "status", "advisories", "error"}.
"""
import json
import sys

import dcap_qvl


def main() -> None:
    with open(sys.argv[1]) as handle:
        cases = json.load(handle)
    results = []
    for case in cases:
        with open(case["quote"], "rb") as handle:
            quote = handle.read()
        with open(case["collateral"]) as handle:
            collateral = dcap_qvl.QuoteCollateralV3.from_json(handle.read())
        try:
            if case.get("root"):
                with open(case["root"], "rb") as handle:
                    report = dcap_qvl.verify_with_root_ca(quote, collateral, handle.read(), case["time"])
            else:
                report = dcap_qvl.verify(quote, collateral, case["time"])
            results.append({"name": case["name"], "ok": True, "status": report.status, "advisories": sorted(report.advisory_ids)})
        except Exception as error:  # dcap-qvl raises ValueError / RuntimeError with a message
            results.append({"name": case["name"], "ok": False, "error": str(error)})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
