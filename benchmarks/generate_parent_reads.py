"""Reading parent attributes while generating a child table, against the usual way
(generate the parent, generate the child's keys, join in pandas), in one run.

    python benchmarks/generate_parent_reads.py [--parents 200000] [--children 2000000]

Both give the same orders: a Zipf key to a customer, the customer's country and an
order date 0-90 days after the customer's signup. synthcore regenerates the customer
columns at the rows the keys point to (the customers are never in memory); the baseline
generates all customers with synthcore and merges with ``DataFrame.merge``. Prints
medians (min-max) on the cpu backend and the ratio; then the time of a window of
children far into a table whose parent has a billion rows (no baseline can hold it).
"""
from __future__ import annotations

import argparse
import os
import sys

import pandas as pd

import synthcore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import round_robin_stats  # noqa: E402

CUSTOMERS = {"columns": {
    "customer_id": {"type": "sequence", "start": 1, "format": "C{:09d}"},
    "country": {"type": "categorical", "values": ["US", "CA", "GB", "DE"],
                "weights": [0.5, 0.2, 0.15, 0.15]},
    "signup_date": {"type": "date", "start": "2020-01-01", "end": "2024-12-31"},
    "vip": {"type": "boolean", "p": 0.05}}}
KEY = {"type": "foreign_key", "table": "customers", "column": "customer_id",
       "distribution": "zipf", "s": 1.05}
READS = {"tables": {"customers": CUSTOMERS, "orders": {"columns": {
    "order_id": {"type": "sequence"}, "customer_id": KEY,
    "days": {"type": "integer", "low": 0, "high": 90},
    "country": {"type": "parent", "key": "customer_id", "column": "country"},
    "order_date": "customer_id.signup_date + days * 1 day"}}}}
PLAIN = {"tables": {"customers": CUSTOMERS, "orders": {"columns": {
    "order_id": {"type": "sequence"}, "customer_id": KEY,
    "days": {"type": "integer", "low": 0, "high": 90}}}}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parents", type=int, default=200_000)
    parser.add_argument("--children", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    rows = {"customers": args.parents, "orders": args.children}
    reads, plain = synthcore.load_spec(READS), synthcore.load_spec(PLAIN)

    def in_generator():
        return synthcore.generate(reads, table="orders", rows=rows, seed=1, backend="cpu")

    def baseline():
        t = synthcore.generate_tables(plain, rows=rows, seed=1, backend="cpu")
        c = t["customers"][["customer_id", "country", "signup_date"]]
        o = t["orders"].merge(c, on="customer_id", how="left", sort=False)
        o["order_date"] = o["signup_date"] + pd.to_timedelta(o["days"], unit="D")
        return o.drop(columns="signup_date")

    a, b = in_generator(), baseline()   # the same table
    assert (a["order_date"].to_numpy() == b["order_date"].to_numpy()).all()
    assert (a["country"].astype(str).to_numpy() == b["country"].astype(str).to_numpy()).all()
    stats = round_robin_stats({"synthcore parent reads": in_generator,
                               "generate parent + pandas merge": baseline}, args.repeat)
    print(f"{args.children:,} orders over {args.parents:,} customers, cpu backend, "
          f"median (min-max) of {args.repeat}:")
    for name, (med, lo, hi) in stats.items():
        print(f"  {name:32s} {med * 1e3:9.1f} ms ({lo * 1e3:.1f}-{hi * 1e3:.1f})")
    ratio = stats["generate parent + pandas merge"][0] / stats["synthcore parent reads"][0]
    print(f"  ratio baseline / synthcore: {ratio:.2f}x")
    uniform = dict(READS, tables=dict(READS["tables"]))
    uniform["tables"]["orders"] = {"columns": dict(READS["tables"]["orders"]["columns"])}
    uniform["tables"]["orders"]["columns"]["customer_id"] = {
        "type": "foreign_key", "table": "customers", "column": "customer_id"}
    uniform = synthcore.load_spec(uniform)   # a Zipf key's table stops at 50M parents
    far = {"customers": 10**9, "orders": 10**12}
    (med, lo, hi), = round_robin_stats({"far": lambda: synthcore.generate(
        uniform, 100_000, table="orders", rows=far, row_offset=10**11, seed=1,
        backend="cpu")}, args.repeat).values()
    print(f"100,000 orders at row 10^11 over 10^9 customers, uniform key (parent rows one "
          f"by one): {med * 1e3:.1f} ms ({lo * 1e3:.1f}-{hi * 1e3:.1f})")


if __name__ == "__main__":
    main()
