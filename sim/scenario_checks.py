"""Cross-section checks of a scenario: codes that must name something defined elsewhere in it.

Each problem is a (field path, reason) pair, so :mod:`sim.loading` can name the file and field.
"""

from __future__ import annotations

import datetime as dt

from sim.scenario import Scenario


def _unknown_codes(path: str, rights, modalities: set[str], subspecialties: set[str]) -> list[tuple[str, str]]:
    """Problems with the modality and subspecialty codes of a staff group or an agreement."""
    return ([(f"{path}.modalities", f"unknown modality {c!r}") for c in rights.modalities if c not in modalities]
            + [(f"{path}.subspecialties", f"unknown subspecialty {c!r}") for c in rights.subspecialties
               if c not in subspecialties])


def reference_problems(scn: Scenario) -> list[tuple[str, str]]:
    """Cross-section problems as (field path, reason); empty when the scenario is consistent."""
    problems: list[tuple[str, str]] = []
    trusts = set(scn.trust_codes)
    urgencies = {u.code for u in scn.urgencies}
    modalities = {m.code for m in scn.modalities}
    subspecialties = set(scn.subspecialties)

    for kind, codes in (("trust", scn.trust_codes), ("urgency", [u.code for u in scn.urgencies]),
                        ("modality", [m.code for m in scn.modalities]), ("subspecialty", scn.subspecialties)):
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            problems.append((f"{kind if kind != 'subspecialty' else 'subspecialties'}", f"duplicate {kind} code(s): {', '.join(duplicates)}"))

    for i, trust in enumerate(scn.trusts):
        # compared in hours: a horizon of any size (value_problems bounds it) is a float, not a date
        if trust.go_live is not None and (trust.go_live - scn.start_date).days * 24.0 >= scn.horizon_hours:
            horizon_end = dt.datetime.combine(scn.start_date, dt.time()) + dt.timedelta(hours=scn.horizon_hours)
            problems.append((f"trusts.{i}.go_live", f"{trust.go_live.isoformat()} is after the horizon ends "
                                                    f"({horizon_end.isoformat(sep=' ')}): the trust would never join; "
                                                    "leave go_live out or lengthen the horizon"))
        if trust.go_live is not None and scn.policy.kind == "pooled":
            # a pooled worklist is one list shared from the start: go-live gates the broker and home sessions
            problems.append((f"trusts.{i}.go_live", "policy.kind = 'pooled' shares every trust's worklist from the "
                                                    "start; go-live dates apply to the broker and home sessions: use "
                                                    "kind = 'brokered' for a rollout, or leave go_live out"))
        problems += [(f"trusts.{i}.modality_multiplier.{c}", f"unknown modality {c!r}")
                     for c in trust.modality_multiplier if c not in modalities]
        problems += [(f"trusts.{i}.subspecialty_weight.{c}", f"unknown subspecialty {c!r}")
                     for c in trust.subspecialty_weight if c not in subspecialties]
    problems += [(f"demand.bank_holiday_factor.{name}", f"unknown profile {name!r}; demand.profiles has "
                  f"{sorted(scn.demand.profiles)}") for name in scn.demand.bank_holiday_factor
                 if name not in scn.demand.profiles]

    for i, urgency in enumerate(scn.urgencies):
        if urgency.profile not in scn.demand.profiles:
            problems.append((f"urgencies.{i}.profile", f"unknown profile {urgency.profile!r}; demand.profiles has {sorted(scn.demand.profiles)}"))

    for i, modality in enumerate(scn.modalities):
        for code in modality.urgency_mix:
            if code not in urgencies:
                problems.append((f"modalities.{i}.urgency_mix.{code}", f"unknown urgency {code!r}"))
        for code in modality.subspecialty_mix:
            if code not in subspecialties:
                problems.append((f"modalities.{i}.subspecialty_mix.{code}", f"unknown subspecialty {code!r}"))
        for code in modality.episode_size:
            if code != "default" and code not in urgencies:
                problems.append((f"modalities.{i}.episode_size.{code}", f"unknown urgency {code!r} (or 'default')"))
        for band in modality.reading_minutes:
            if not band.isdigit() or not 1 <= int(band) <= len(modality.band_mix):
                problems.append((f"modalities.{i}.reading_minutes.{band}", f"band must be 1..{len(modality.band_mix)}"))

    for i, block in enumerate(scn.demand.initial_backlog):
        for attr, known in (("trust", trusts), ("modality", modalities), ("urgency", urgencies)):
            if getattr(block, attr) not in known:
                problems.append((f"demand.initial_backlog.{i}.{attr}", f"unknown {attr} {getattr(block, attr)!r}"))

    for i, group in enumerate(scn.staff):
        if group.trust not in trusts:
            problems.append((f"staff.{i}.trust", f"unknown trust {group.trust!r}; trusts are {sorted(trusts)}"))
        for code in group.credentialed_trusts:
            if code not in trusts:
                problems.append((f"staff.{i}.credentialed_trusts", f"reporter credentialed for trust {code!r}, which does not exist"))
        problems += _unknown_codes(f"staff.{i}", group, modalities, subspecialties)
        if group.max_band > scn.n_bands:
            problems.append((f"staff.{i}.max_band", f"band {group.max_band} exceeds the {scn.n_bands} bands defined"))

    groups = {(g.trust, g.name) for g in scn.staff}
    for i, agreement in enumerate(scn.agreements):
        if (agreement.reader_trust, agreement.readers) not in groups:
            problems.append((f"agreements.{i}.readers", f"no staff group {agreement.readers!r} at trust {agreement.reader_trust!r}"))
        if agreement.trust not in trusts:
            problems.append((f"agreements.{i}.trust", f"unknown trust {agreement.trust!r}"))
        problems += _unknown_codes(f"agreements.{i}", agreement, modalities, subspecialties)
    for name in ("insourcing_tariff", "inter_trust_charge", "commissioner_income"):
        table = getattr(scn.finance, name)
        for code, prices in table.items():
            if code not in modalities:
                problems.append((f"finance.{name}.{code}", f"unknown modality {code!r}"))
        if table:
            for modality in scn.modalities:
                prices = table.get(modality.code)
                if prices is None or len(prices) < len(modality.band_mix):
                    problems.append((f"finance.{name}.{modality.code}", f"needs a price for each of the {len(modality.band_mix)} bands"))
    if scn.home_reporting is not None and scn.home_reporting.enabled:
        reporter_ids = {f"{g.trust}-{g.name}-{k + 1:03d}" for g in scn.staff for k in range(g.count)}
        names = {g.name for g in scn.staff}
        for who in scn.home_reporting.participants:
            if who not in names and who not in reporter_ids:
                problems.append(("home_reporting.participants", f"{who!r} is neither a staff group nor a reporter id"))
        if not scn.home_reporting.participants and not any(g.home_workstation for g in scn.staff):
            problems.append(("home_reporting.enabled", "no staff group has home_workstation = true"))
        if not scn.finance.insourcing_tariff:
            problems.append(("finance.insourcing_tariff", "home reporting needs an insourcing tariff"))
        home = scn.home_reporting
        problems += [("home_reporting.urgencies", f"unknown urgency {c!r}") for c in home.urgencies if c not in urgencies]
        problems += [("home_reporting.modalities", f"unknown modality {c!r}") for c in home.modalities
                     if c not in modalities]
        for k, worklist in enumerate(home.worklists):
            problems += [(f"home_reporting.worklists.{k}.modalities", f"unknown modality {c!r}")
                         for c in worklist.modalities if c not in modalities]
        problems += [(f"home_reporting.download_minutes.{c}", f"unknown modality {c!r}")
                     for c in home.download_minutes if c not in modalities]
        if home.credentials is not None:
            problems += _unknown_codes("home_reporting.credentials", home.credentials, modalities, subspecialties)
            if home.credentials.max_band > scn.n_bands:
                problems.append(("home_reporting.credentials.max_band",
                                 f"band {home.credentials.max_band} exceeds the {scn.n_bands} bands defined"))
        if home.reads == "posted" and scn.outsourcing is None:
            problems.append(("home_reporting.reads", "posted work is priced against outsourcing: the scenario needs "
                                                     "an [outsourcing] price list"))
    if scn.policy.kind in ("pooled", "brokered") and scn.finance.inter_trust_charge == {}:
        problems.append(("finance.inter_trust_charge", f"a {scn.policy.kind} policy needs an inter-trust charge"))

    problems += _subset_problems(scn, trusts)

    if scn.teleradiology is not None:
        tele = scn.teleradiology
        problems += [("teleradiology.urgencies", f"unknown urgency {c!r}") for c in tele.urgencies if c not in urgencies]
        problems += [("teleradiology.modalities", f"unknown modality {c!r}") for c in tele.modalities
                     if c not in modalities]
        for modality in scn.modalities:
            if modality.code in tele.modalities:
                prices = tele.price.get(modality.code)
                if prices is None or len(prices) < len(modality.band_mix):
                    problems.append((f"teleradiology.price.{modality.code}",
                                     f"needs a price for each of the {len(modality.band_mix)} bands"))
        problems += [(f"teleradiology.price.{c}", f"unknown modality {c!r}") for c in tele.price if c not in modalities]

    if scn.outsourcing is not None:
        out = scn.outsourcing
        for code in out.urgencies:
            if code not in urgencies:
                problems.append(("outsourcing.urgencies", f"unknown urgency {code!r}"))
        problems += [(f"outsourcing.daily_cap_by_trust.{c}", f"unknown trust {c!r}") for c in out.daily_cap_by_trust
                     if c not in trusts]
        for code in out.urgency_price_factor:
            if code not in urgencies:
                problems.append((f"outsourcing.urgency_price_factor.{code}", f"unknown urgency {code!r}"))
        for modality in scn.modalities:
            prices = out.price.get(modality.code)
            if prices is None:
                problems.append((f"outsourcing.price.{modality.code}", "no outsourcing price for this modality"))
            elif len(prices) < len(modality.band_mix):
                problems.append((f"outsourcing.price.{modality.code}", f"{len(prices)} prices for {len(modality.band_mix)} bands"))
        for code in out.price:
            if code not in modalities:
                problems.append((f"outsourcing.price.{code}", f"unknown modality {code!r}"))
    return problems


def _subset_problems(scn: Scenario, trusts: set[str]) -> list[tuple[str, str]]:
    """simulate_trusts must name trusts, and only where no lever links a simulated trust to another one."""
    if not scn.simulate_trusts:
        return []
    problems = [("simulate_trusts", f"unknown trust {c!r}; trusts are {sorted(trusts)}")
                for c in scn.simulate_trusts if c not in trusts]
    why = "trusts are simulated apart only when nothing links them: "
    if scn.policy.kind != "local":
        problems.append(("simulate_trusts", why + f"policy.kind is {scn.policy.kind!r} (needs 'local')"))
    home = scn.home_reporting
    if home is not None and home.enabled and home.reads != "own":
        problems.append(("simulate_trusts", why + "home_reporting.reads is 'posted' (cross-trust work)"))
    for i, agreement in enumerate(scn.agreements):
        if scn.simulates(agreement.trust) != scn.simulates(agreement.reader_trust):
            problems.append((f"agreements.{i}", why + f"agreement {agreement.name!r} links {agreement.reader_trust} "
                                                      f"and {agreement.trust}, and only one of them is simulated"))
    return problems
