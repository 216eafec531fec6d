"""Writes python/synthcore/data/customers.parquet, the table `synthcore demo` fits.

Made by the project from a fixed seed (no real people, no licence question):
5,000 customers with correlated ints, floats (a spike at zero, nulls), a
datetime, categoricals and a boolean. Re-run to regenerate it bit for bit.
"""
import pathlib

import numpy as np
import pandas as pd
from scipy import special

N = 5000
rng = np.random.default_rng(20261122)
z = rng.multivariate_normal(np.zeros(5), [[1.0, 0.6, 0.3, -0.2, 0.4],
                                          [0.6, 1.0, 0.5, -0.4, 0.6],
                                          [0.3, 0.5, 1.0, -0.5, 0.3],
                                          [-0.2, -0.4, -0.5, 1.0, -0.2],
                                          [0.4, 0.6, 0.3, -0.2, 1.0]], size=N)
u = special.ndtr(z)
age = np.clip(np.round(18 + 62 * u[:, 0] ** 1.3), 18, 80).astype(np.int64)
income = np.round(np.exp(10.3 + 0.55 * z[:, 1]), -2)
plan = np.array(["basic", "plus", "pro"])[np.searchsorted([0.55, 0.85], u[:, 2])]
churned = u[:, 3] > 0.78
spend = np.where(u[:, 4] < 0.18, 0.0, np.round(np.exp(3.2 + 0.8 * z[:, 4] + 0.3 * z[:, 1]), 2))
spend[rng.random(N) < 0.05] = np.nan
orders = rng.poisson(np.exp(1.2 + 0.5 * z[:, 4]))
rating = pd.array(np.clip(np.round(3.4 - 1.1 * z[:, 3] + rng.normal(0, 0.8, N)), 1, 5)
                  .astype(np.int64), dtype="Int64")
rating[rng.random(N) < 0.12] = pd.NA
region = rng.choice(["north", "south", "east", "west", "central", "coast", "islands", "mountain"],
                    size=N, p=[0.2, 0.18, 0.16, 0.14, 0.12, 0.1, 0.05, 0.05])
signup = (pd.Timestamp("2019-01-01") + pd.to_timedelta(
    np.round((1 - u[:, 0]) * 6 * 365 * 24 * 3600), unit="s")).astype("datetime64[ns]")
df = pd.DataFrame({"age": age, "income": income, "plan": pd.Categorical(plan),
                   "churned": churned, "monthly_spend": spend, "orders": orders,
                   "rating": rating, "region": region, "signup": signup})
out = pathlib.Path(__file__).resolve().parents[1] / "python/synthcore/data/customers.parquet"
df.to_parquet(out, index=False)
print(f"wrote {out} ({out.stat().st_size} bytes)")
print(df.head())
print(df.dtypes)
