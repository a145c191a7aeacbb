"""Each HTB class's rate (its guarantee) from the policy's reservations and shares, and
back: NIOC's words from the rates tc holds.

Why rates and not only quanta: HTB lends what the rates leave round robin, a quantum per
turn but at least one packet, and a turn ends when the class's queue runs empty. A
host's own TCP flow keeps about two GSO packets queued (TCP Small Queues), so its queue
empties many times per round, and each time a class of small shares gets a turn: on the
lab, shares 100:1 measured 4:1 to 70:1 with quanta alone. A rate is served before any
lending, so under full contention each class gets

    rate = reservation + shares x unit,  unit = (link - reservations) // all shares

(`unit`: kbit/s per share, the state's sizing.kbit_per_share), whatever the queues do;
what an idle class leaves is still lent by quanta. A limit is the class's ceil: where the
rate is above it, the rest is lent to the others (HTB takes a rate above the ceil and
never sends above it). Changing one class's shares or reservation changes the unit, so
every class's rate in tc, but no other class's words.

Runs on the managed host: Python 3.9+, standard library only.
"""

MIN_RATE = 8  # kbit/s: HTB's smallest useful rate


def unit(classes, capacity, per_share):
    """kbit/s per share: what the reservations leave of `capacity` (kbit/s), divided
    among all the shares (`classes` as guarantees() takes them), whole kbit/s."""
    reserved = sum(_kbit(c.get("reservation") or 0) for c in classes.values())
    quanta = sum(c.get("quantum") or 0 for c in classes.values())
    return max(0, capacity - reserved) * per_share // quanta if quanta else 0


def guarantees(classes, per_share, kbit_per_share):
    """{name: rate kbit/s} for `classes` {name: {"reservation": Mbit/s or None,
    "quantum": bytes (shares x `per_share`), "rate": Mbit/s where tc's own number stands
    (read that way: words())}}. Integers only: the same policy, the same rates."""
    out = {}
    for name, cls in classes.items():
        if cls.get("rate") is not None:
            out[name] = _kbit(cls["rate"])
        else:
            shared = (cls.get("quantum") or 0) * kbit_per_share // per_share
            out[name] = max(MIN_RATE, _kbit(cls.get("reservation") or 0) + shared)
    return out


def words(rates, quanta, per_share):
    """(kbit/s per share, {name: {"reservation"[, "rate"]}}) from the rates tc holds
    (`rates`, `quanta`: {name: kbit/s}, {name: bytes}): the unit and reservations
    guarantees() turns into these rates. A class without reservation has all its rate
    from its shares: of the units such classes give, the one that explains the most
    classes is the unit; the others' reservations are what their rates hold beyond
    their shares, in whole Mbit/s. A class whose rate they do not explain (a rate or a
    quantum changed by hand, or every class reserving) keeps tc's rate as `rate` (Mbit/s):
    drift, and the rate a rollback puts back."""
    best = None
    for name in sorted(rates):
        shares, left = divmod(quanta.get(name) or 0, per_share)
        if shares and not left and rates[name] % shares == 0 and rates[name] > MIN_RATE:
            candidate = rates[name] // shares
            out = _reserving(rates, quanta, per_share, candidate)
            fits = sum("rate" not in w for w in out.values())
            if best is None or fits > best[0]:
                best = (fits, candidate, out)
    if best is None:
        return 0, _reserving(rates, quanta, per_share, 0)
    return best[1], best[2]


def _reserving(rates, quanta, per_share, kbit_per_share):
    out = {}
    for name, rate in rates.items():
        shared = (quanta.get(name) or 0) * kbit_per_share // per_share
        reserved = max(0, int(round((rate - shared) / 1000.0)))
        out[name] = {"reservation": reserved or None}
        if rate != max(MIN_RATE, 1000 * reserved + shared):
            out[name]["rate"] = rate // 1000 if rate % 1000 == 0 else rate / 1000.0
    return out


def in_tc_words(state):
    """`state` with each declared class's rate, ceil and quantum (networkd's sections)."""
    numbers = tc_numbers(state)
    return dict(state, classes={n: dict(c, **numbers[n]) for n, c in state["classes"].items()})


def tc_numbers(state):
    """{class name: {rate, ceil (Mbit/s), quantum (bytes)}} of `state`'s classes, from
    NIOC's words and the state's kbit/s per share."""
    classes = state.get("classes") or {}
    if any("reservation" not in c for c in classes.values()):  # read without the parent
        return {n: {k: c.get(k) for k in ("rate", "ceil", "quantum")} for n, c in classes.items()}
    if not classes:
        return {}
    model, quanta = state["sizing"], {}
    for name, info in classes.items():
        shares = info.get("shares")
        quanta[name] = None if shares is None else int(round(shares * model["quantum_per_share"]))
    rates = guarantees(
        {n: dict(c, quantum=quanta[n]) for n, c in classes.items()},
        model["quantum_per_share"],
        model["kbit_per_share"],
    )
    return {
        n: {"rate": rates[n] / 1000.0 if rates[n] % 1000 else rates[n] // 1000,
            "ceil": state["ceil"] if c["limit"] is None else c["limit"], "quantum": quanta[n]}
        for n, c in classes.items()
    }  # fmt: skip


def _kbit(mbits):
    return int(round(mbits * 1000))
