"""Scenario settings that are legal but probably not what the planner meant: warnings, not errors.

Each is a (field path, reason) pair, shown by :mod:`sim.loading` with the file's name. Today they
concern the broker's market (issue 10): work a trust posts that no session participant may read,
and work the tariff prices out of the market.
"""

from __future__ import annotations

import numpy as np

from sim.scenario import Scenario


class ScenarioWarning(UserWarning):
    """A scenario that runs but will probably not do what its author meant."""


def _participant_groups(scn: Scenario) -> list:
    cfg = scn.home_reporting
    if cfg.participants:
        ids = set(cfg.participants)
        return [g for g in scn.staff if g.name in ids or any(
            f"{g.trust}-{g.name}-{k + 1:03d}" in ids for k in range(g.count))]
    return [g for g in scn.staff if g.home_workstation and g.count > 0]


def market_warnings(scn: Scenario) -> list[tuple[str, str]]:
    """Posted work no participant may read, and modalities the tariff prices out of the market."""
    cfg = scn.home_reporting
    if cfg is None or not cfg.enabled:
        return []
    found: list[tuple[str, str]] = []
    groups = _participant_groups(scn)
    posted_modalities = list(cfg.modalities) or [m.code for m in scn.modalities]
    for trust in scn.trust_codes:
        if cfg.reads == "own":  # only trusts with participants run sessions: the others post nothing
            readers = [g for g in groups if g.trust == trust]
            if not readers:
                continue
        else:
            readers = [g for g in groups if g.trust == trust or trust in g.credentialed_trusts
                       or scn.policy.credential_all_trusts]
        wider = set(cfg.credentials.modalities) if cfg.credentials is not None else set()  # a pilot's contract
        unread = [m for m in posted_modalities if not any(m in g.modalities or m in wider for g in readers)]
        if unread:
            found.append(("home_reporting.modalities",
                          f"trust {trust} posts {', '.join(unread)} work that no session participant may read "
                          f"(no participating staff group {'at' if cfg.reads == 'own' else 'credentialed for'} "
                          f"{trust} reads {'it' if len(unread) == 1 else 'them'}): it stays unmet"))
    if cfg.reads == "posted" and scn.outsourcing is not None and scn.finance.insourcing_tariff:
        from sim.finance import outsourcing_price, tariff

        urgencies = [i for i, u in enumerate(scn.urgencies) if not cfg.urgencies or u.code in cfg.urgencies]
        for m, modality in enumerate(scn.modalities):
            if modality.code not in posted_modalities:
                continue
            bands = np.arange(len(modality.band_mix))
            mm, bb, uu = (a.ravel() for a in np.meshgrid([m], bands, urgencies, indexing="ij"))
            cheaper = tariff(scn, "insourcing_tariff", mm, bb) < np.nan_to_num(outsourcing_price(scn, mm, bb, uu),
                                                                              nan=-np.inf)
            if not cheaper.any():
                found.append(("home_reporting.tariff_multiplier",
                              f"at {cfg.tariff_multiplier:g} the tariff is at or above the outsourcing price of "
                              f"every posted {modality.code} exam: the financial dashboard posts no {modality.code} "
                              "work"))
    return found
