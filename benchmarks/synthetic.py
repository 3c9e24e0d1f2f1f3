"""A synthetic consortium k times EMRAD's size: every trust, its staff and its demand repeated.

Copy j of trust RX1 is RX1-j (j >= 1), with the same population, multipliers, staff groups (their
home and credentialed trusts mapped into the same copy), backlog blocks and outsourcing cap; each
modality's annual volume is multiplied by k, so every copy sees the original trust's demand. Used
by the scaling table of benchmarks/bench_year.py: cost per exam should not depend on k.
"""

from __future__ import annotations

from sim.loading import validate_data
from sim.scenario import Scenario


def repeated_consortium(scn: Scenario, copies: int) -> Scenario:
    if copies == 1:
        return scn
    data = scn.model_dump(mode="python")

    def code(c: str, j: int) -> str:
        return c if j == 0 else f"{c}-{j}"

    data["trusts"] = [{**t, "code": code(t["code"], j), "name": f"{t['name']} ({j})" if j else t["name"]}
                      for j in range(copies) for t in data["trusts"]]
    data["modalities"] = [{**m, "annual_volume": m["annual_volume"] * copies} for m in data["modalities"]]
    data["staff"] = [{**g, "name": code(g["name"], j), "trust": code(g["trust"], j),
                      "credentialed_trusts": tuple(code(c, j) for c in g["credentialed_trusts"])}
                     for j in range(copies) for g in data["staff"]]
    demand = data["demand"]
    demand["initial_backlog"] = [{**b, "trust": code(b["trust"], j)}
                                 for j in range(copies) for b in demand["initial_backlog"]]
    if data.get("outsourcing"):
        caps = data["outsourcing"].get("daily_cap_by_trust", {})
        data["outsourcing"]["daily_cap_by_trust"] = {code(c, j): cap for j in range(copies) for c, cap in caps.items()}
    data["agreements"] = [{**a, "name": code(a["name"], j), "readers": code(a["readers"], j),
                           "reader_trust": code(a["reader_trust"], j), "trust": code(a["trust"], j)}
                          for j in range(copies) for a in data["agreements"]]
    if data.get("home_reporting") and data["home_reporting"].get("participants"):
        named = data["home_reporting"]["participants"]
        data["home_reporting"]["participants"] = tuple(code(n, j) for j in range(copies) for n in named)
    data["name"] = f"{scn.name} x{copies}"
    return validate_data(data, f"{scn.name} x{copies} (benchmarks/synthetic.py)")
