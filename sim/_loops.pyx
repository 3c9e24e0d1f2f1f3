# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The per-exam loops outside the event loop, compiled (Cython, built by `pip install`: see setup.py).

Definitions and callers: sim.model.Engine._decode_reads (who read what, by which route, after the
run), sim.exam_sums (the metrics' sums, flows, reporters' totals; turnaround by cell) and
sim.timeline_kernels (backlog series, session split). Each loop evaluates per exam exactly
the numpy expression it replaced (IEEE double, the same operations in the same order; built with
-ffp-contract=off, so no multiply-add is fused) and adds a sum's terms in exam order, as np.bincount
does; tests/test_fast_paths.py compares each with its numpy definition, bit for bit.

Also the broker's hourly arithmetic (BrokerArithmetic, called by sim.policies.brokered.TheBroker once a
rebalancing, never per event: the reporters' picks and every SimPy event stay Python); it grants exactly
what tests/broker_reference.py's plain Python grants (tests/test_broker_arithmetic.py).
"""

import numpy as np

from libc.math cimport NAN, ceil, fmod

ctypedef fused index_t:
    short
    int

# route codes (sim.worklist.ROUTES; test_fast_paths checks them)
cdef enum:
    UNREPORTED = 0
    CORE = 1
    OUTSOURCED = 2
    HOME = 3
    BROKERED = 4
    TELERADIOLOGY = 5
    N_ROUTES = 6

# rows of the per-cell sums (sim.exam_sums.CELL_SUMS, in that order; test_fast_paths checks them)
cdef enum:
    S_INITIAL_BACKLOG, S_ARRIVALS, S_REPORTED, S_OUTSOURCED, S_TELERADIOLOGY, S_REPORTED_CORE, S_REPORTED_HOME,
    S_REPORTED_BROKERED, S_READING_HOURS, S_HOME_READING_HOURS, S_HAS_WAIT, S_WAIT_SUM, S_DUE, S_MET, S_DUE_28,
    S_LATE_28, S_REPORTED_AFTER_28D, S_HAS_TAT, S_TAT_SUM, S_ACQUIRED_OOH, S_OOH_SENT_OUT, S_COST_CORE, S_COST_HOME,
    S_COST_BROKERED, S_COST_OUTSOURCED, S_COST_TELERADIOLOGY, S_COUNTERFACTUAL_COST, S_COMMISSIONER_INCOME,
    S_INTER_TRUST_PAID, S_POSTED, S_POSTED_WORK_HOURS, S_MATCHED_WORK_HOURS, S_UNMET_POSTED, S_UNMET_WORK_HOURS,
    S_POSTED_OUTSOURCED, S_OUTSOURCING_AVOIDED_HOME, S_OUTSOURCING_AVOIDED_BROKERED, N_SUMS

cdef double HOURS_28_DAYS = 28 * 24
cdef double HOURS_PER_WEEK = 168.0
cdef double WEEKDAY_HOURS = 5 * 24
cdef double CORE_START = 8.0  # weekday core hours 08:00-18:00 (sim.exam_sums.CORE_HOURS)
cdef double CORE_END = 18.0


def route_codes() -> dict:
    """The compiled route codes by name, for the test that they are sim.worklist.ROUTE_CODE."""
    return {"unreported": UNREPORTED, "core": CORE, "outsourced": OUTSOURCED, "home": HOME, "brokered": BROKERED,
            "teleradiology": TELERADIOLOGY}


def sum_rows() -> dict:
    """The row each per-cell sum fills, by name, for the test that they follow sim.exam_sums.CELL_SUMS."""
    return {
        "initial_backlog": S_INITIAL_BACKLOG, "arrivals": S_ARRIVALS, "reported": S_REPORTED,
        "outsourced": S_OUTSOURCED, "teleradiology": S_TELERADIOLOGY, "reported_core": S_REPORTED_CORE,
        "reported_home": S_REPORTED_HOME, "reported_brokered": S_REPORTED_BROKERED, "reading_hours": S_READING_HOURS,
        "home_reading_hours": S_HOME_READING_HOURS, "has_wait": S_HAS_WAIT, "wait_sum": S_WAIT_SUM, "due": S_DUE,
        "met": S_MET, "due_28": S_DUE_28, "late_28": S_LATE_28, "reported_after_28d": S_REPORTED_AFTER_28D,
        "has_tat": S_HAS_TAT, "tat_sum": S_TAT_SUM, "acquired_ooh": S_ACQUIRED_OOH, "ooh_sent_out": S_OOH_SENT_OUT,
        "cost_core": S_COST_CORE, "cost_home": S_COST_HOME, "cost_brokered": S_COST_BROKERED,
        "cost_outsourced": S_COST_OUTSOURCED, "cost_teleradiology": S_COST_TELERADIOLOGY,
        "counterfactual_cost": S_COUNTERFACTUAL_COST, "commissioner_income": S_COMMISSIONER_INCOME,
        "inter_trust_paid": S_INTER_TRUST_PAID, "posted": S_POSTED, "posted_work_hours": S_POSTED_WORK_HOURS,
        "matched_work_hours": S_MATCHED_WORK_HOURS, "unmet_posted": S_UNMET_POSTED,
        "unmet_work_hours": S_UNMET_WORK_HOURS, "posted_outsourced": S_POSTED_OUTSOURCED,
        "outsourcing_avoided_home": S_OUTSOURCING_AVOIDED_HOME,
        "outsourcing_avoided_brokered": S_OUTSOURCING_AVOIDED_BROKERED,
    }


def time_constants() -> dict:
    """Hours the loop compares with, for the test that they are sim.exam_sums's."""
    return {"hours_28_days": HOURS_28_DAYS, "weekday_hours": WEEKDAY_HOURS, "core_hours": (CORE_START, CORE_END),
            "hours_per_week": HOURS_PER_WEEK}


def exam_pass(const short[:] trust, const short[:] modality, const short[:] urgency, const double[:] arrival,
              const double[:] work_hours, const double[:] left_at, const double[:] done_at,
              const signed char[:] raw_route, const int[:] reader, const index_t[:] kind,
              const unsigned char[:] posted, double horizon, Py_ssize_t n_t, Py_ssize_t n_m, Py_ssize_t n_u,
              Py_ssize_t first_counted, const long long[:] due_end, const double[:] targets, Py_ssize_t due_28_end,
              const long long[:, :] holiday_ranges,
              const double[:] hourly_cost, const long long[:] reporter_trust,
              const double[:] out_price, const double[:] out_price_or_0, const double[:] night_price_or_0,
              const double[:] home_tariff, const double[:] charge_tariff, const double[:] counterfactual_price,
              const double[:] income_price,
              signed char[:] route_out, unsigned char[:, :] flags_out, short[:] reading_trust_out,
              double[:, :] s, double[:, :] flows, double[:, :] reporters, double[:] received):
    """sim.exam_sums.exam_sums's pass: see there for the definitions. Fills the output arrays."""
    cdef Py_ssize_t i, n = arrival.shape[0], holiday = 0, n_holiday = holiday_ranges.shape[0]
    cdef Py_ssize_t c, f, r, rt, k, u
    cdef double a, left, done, hours, cost, charge, wait, tat, hour, clock, counterfactual
    cdef signed char raw_code, code
    cdef bint started, reported, outsourced, night, counted, has_report, inside, matched
    for i in range(n):
        c = (trust[i] * n_m + modality[i]) * n_u + urgency[i]
        a = arrival[i]
        left = left_at[i]
        done = done_at[i]
        raw_code = raw_route[i]
        k = kind[i]
        started = raw_code == CORE or raw_code == HOME or raw_code == BROKERED
        reported = started and done <= horizon
        outsourced = raw_code == OUTSOURCED
        night = raw_code == TELERADIOLOGY
        code = UNREPORTED if started and not reported else raw_code
        route_out[i] = code
        flags_out[0, i] = reported
        flags_out[1, i] = outsourced
        flags_out[2, i] = night
        r = reader[i]
        rt = reporter_trust[r] if r >= 0 else -1
        reading_trust_out[i] = <short>rt

        hours = 0.0
        if started:  # np.minimum / np.maximum: NaN propagates
            hours = done if (done <= horizon or done != done) else horizon
            hours -= left
            if hours < 0.0:  # a later exam of an episode taken just before the horizon
                hours = 0.0
        cost = 0.0
        if code == CORE or code == BROKERED:
            cost = hours * (hourly_cost[r] if r >= 0 else NAN)
        elif code == HOME:
            cost = home_tariff[k]
        elif code == OUTSOURCED:
            cost = out_price[k]
        elif code == TELERADIOLOGY:
            cost = night_price_or_0[k]
        charge = charge_tariff[k] if code == BROKERED else 0.0

        # counts and sums over every exam of the cell
        if a < 0:
            s[S_INITIAL_BACKLOG, c] += 1.0
        if a >= 0:
            s[S_ARRIVALS, c] += 1.0
        if reported:
            s[S_REPORTED, c] += 1.0
        if outsourced:
            s[S_OUTSOURCED, c] += 1.0
        if night:
            s[S_TELERADIOLOGY, c] += 1.0
        if code == CORE:
            s[S_REPORTED_CORE, c] += 1.0
            s[S_COST_CORE, c] += cost
        elif code == HOME:
            s[S_REPORTED_HOME, c] += 1.0
            s[S_HOME_READING_HOURS, c] += hours
            s[S_COST_HOME, c] += cost
        elif code == BROKERED:
            s[S_REPORTED_BROKERED, c] += 1.0
            s[S_COST_BROKERED, c] += cost
        elif code == OUTSOURCED:
            s[S_COST_OUTSOURCED, c] += cost
        elif code == TELERADIOLOGY:
            s[S_COST_TELERADIOLOGY, c] += cost
        s[S_READING_HOURS, c] += hours
        s[S_INTER_TRUST_PAID, c] += charge

        counted = i >= first_counted
        wait = left - a
        if counted and wait == wait:
            s[S_HAS_WAIT, c] += 1.0
            s[S_WAIT_SUM, c] += wait
        has_report = reported or ((outsourced or night) and done <= horizon)
        tat = done - a if has_report else NAN
        if counted:
            u = urgency[i]
            if i < due_end[u]:
                s[S_DUE, c] += 1.0
                if tat <= targets[u]:
                    s[S_MET, c] += 1.0
            if i < due_28_end:
                s[S_DUE_28, c] += 1.0
                if not tat <= HOURS_28_DAYS:
                    s[S_LATE_28, c] += 1.0
            if tat > HOURS_28_DAYS:
                s[S_REPORTED_AFTER_28D, c] += 1.0
            if tat == tat:
                s[S_HAS_TAT, c] += 1.0
                s[S_TAT_SUM, c] += tat

        if a >= 0:  # out of hours: not a weekday's core hours, or a bank holiday (the backlog never is)
            while holiday < n_holiday and i >= holiday_ranges[holiday, 1]:
                holiday += 1
            hour = fmod(a, HOURS_PER_WEEK)  # exact, and np.mod's value for a >= 0
            clock = fmod(hour, 24.0)
            inside = hour < WEEKDAY_HOURS and clock >= CORE_START and clock < CORE_END
            if inside and holiday < n_holiday and i >= holiday_ranges[holiday, 0]:
                inside = False
            if not inside:
                s[S_ACQUIRED_OOH, c] += 1.0
                if outsourced or night:
                    s[S_OOH_SENT_OUT, c] += 1.0

        counterfactual = counterfactual_price[k]
        if code != UNREPORTED and counterfactual == counterfactual:
            s[S_COUNTERFACTUAL_COST, c] += counterfactual
        if has_report:
            s[S_COMMISSIONER_INCOME, c] += income_price[k]

        # the market: posted work, matched by an extra session (the stored home route: a read in hand counts)
        matched = raw_code == HOME
        if posted[i]:
            s[S_POSTED, c] += 1.0
            s[S_POSTED_WORK_HOURS, c] += work_hours[i]
            if not matched:
                s[S_UNMET_POSTED, c] += 1.0
                s[S_UNMET_WORK_HOURS, c] += work_hours[i]
            if outsourced:
                s[S_POSTED_OUTSOURCED, c] += 1.0
        if matched:
            s[S_MATCHED_WORK_HOURS, c] += work_hours[i]
        if code == HOME:
            s[S_OUTSOURCING_AVOIDED_HOME, c] += out_price_or_0[k]
        elif code == BROKERED:
            s[S_OUTSOURCING_AVOIDED_BROKERED, c] += out_price_or_0[k]

        # flows between trusts (in-house routes) and each reporter's totals
        if code == CORE or code == HOME or code == BROKERED:
            f = (trust[i] * (n_t + 1) + rt + 1) * N_ROUTES + code
            flows[0, f] += 1.0
            flows[1, f] += hours
            flows[2, f] += cost
            flows[3, f] += charge
        if r >= 0:
            reporters[0, r] += hours
            if reported:
                reporters[1, r] += 1.0
        if charge != 0.0:
            received[rt if rt > 0 else 0] += charge


def decode_reads(int[:] reader, signed char[:] route, const short[:] exam_trust, const long long[:] home_trust,
                 const signed char[:] own_route, const signed char[:] cross_route):
    """sim.model.Engine._decode_reads, in place: a reader code (reporter + reporters x session kind) becomes
    the reporter, and the read gets its kind's own-trust route for an exam of the reporter's trust, else
    its other-trust route. Exams without a reader keep their route."""
    cdef Py_ssize_t i, kind, who, n_reporters = home_trust.shape[0]
    for i in range(reader.shape[0]):
        if reader[i] >= 0:
            kind = reader[i] // n_reporters
            who = reader[i] - kind * n_reporters
            reader[i] = <int>who
            route[i] = own_route[kind] if exam_trust[i] == home_trust[who] else cross_route[kind]


def scatter_turnaround(const short[:] trust, const short[:] modality, const short[:] urgency, const double[:] arrival,
                       const double[:] done_at, const unsigned char[:] reported, const unsigned char[:] outsourced,
                       const unsigned char[:] night, double horizon, Py_ssize_t n_m, Py_ssize_t n_u,
                       Py_ssize_t first_counted, long long[:] next_slot, double[:] values):
    """sim.exam_sums.turnaround_by_cell's pass: each counted exam's turnaround into its cell's next slot."""
    cdef Py_ssize_t i, c
    for i in range(first_counted, arrival.shape[0]):
        if reported[i] or ((outsourced[i] or night[i]) and done_at[i] <= horizon):  # has_report
            c = (trust[i] * n_m + modality[i]) * n_u + urgency[i]
            values[next_slot[c]] = done_at[i] - arrival[i]
            next_slot[c] += 1


cdef inline Py_ssize_t first_at_or_above(const double[:] grid, double value) noexcept nogil:
    """np.searchsorted(grid, value, side="left") for a finite ascending grid of about even steps (np.arange):
    an index from arithmetic, then moved until the grid's own values agree (exact however the grid was
    rounded); NaN sorts last, as in numpy."""
    cdef Py_ssize_t n = grid.shape[0], k
    if n == 0 or not value <= grid[n - 1]:  # past the end, or NaN
        return n
    if value <= grid[0]:  # the initial backlog, -inf
        return 0
    k = <Py_ssize_t>ceil((value - grid[0]) / (grid[1] - grid[0]))  # n >= 2 here
    if k < 1:
        k = 1
    if k > n - 1:
        k = n - 1
    while k > 0 and grid[k - 1] >= value:
        k -= 1
    while grid[k] < value:  # stops: grid[n - 1] >= value
        k += 1
    return k


def backlog_counts(const short[:] trust, const double[:] arrival, const double[:] left_at, const double[:] grid,
                   Py_ssize_t n_trusts, long long[:, :] waiting):
    """sim.timeline_kernels.backlog_counts's pass: fills `waiting` (n_trusts, len(grid))."""
    cdef Py_ssize_t i, k, t, n_grid = grid.shape[0]
    cdef long long running
    cdef long long[:, :] marks = np.zeros((n_trusts, n_grid + 1), dtype=np.int64)  # column n_grid: past the end
    for i in range(trust.shape[0]):
        t = trust[i]
        if t < 0 or t >= n_trusts:
            continue
        marks[t, first_at_or_above(grid, arrival[i])] += 1
        marks[t, first_at_or_above(grid, left_at[i])] -= 1
    for t in range(n_trusts):
        running = 0
        for k in range(n_grid):
            running += marks[t, k]
            waiting[t, k] = running


cdef inline double minimum(double a, double b) noexcept nogil:
    """np.minimum of two scalars: NaN if either is NaN, else the smaller; `b` if they are equal."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a < b else b


cdef inline double maximum(double a, double b) noexcept nogil:
    """np.maximum of two scalars (as `minimum`)."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a > b else b


cdef inline bint before(double value, double start) noexcept nogil:
    """value < start in numpy's sort order (NaN above every number), as np.searchsorted decides it."""
    return value < start or (start != start and value == value)


cdef inline Py_ssize_t interval_of(const double[:] starts, Py_ssize_t lo, Py_ssize_t hi, double value,
                                   Py_ssize_t guess) noexcept nogil:
    """Index (lo..hi-1) of the last interval starting at or before `value`, the first if none:
    max(np.searchsorted(starts[lo:hi], value, side="right") - 1, 0) + lo (starts ascending). A reader's
    next read mostly falls in the interval of its previous one (`guess`) or the next: checked first."""
    cdef Py_ssize_t a, b, mid
    if not before(value, starts[guess]):
        if guess + 1 == hi or before(value, starts[guess + 1]):
            return guess
        if guess + 2 == hi or before(value, starts[guess + 2]):
            return guess + 1
    a = lo
    b = hi
    while a < b:
        mid = (a + b) // 2
        if before(value, starts[mid]):
            b = mid
        else:
            a = mid + 1
    return a - 1 if a - 1 > lo else lo


def count_session_reads(const signed char[:] route, const int[:] reader, signed char core, signed char brokered,
                        const long long[:] interval_bounds, long long[:] bounds):
    """sim.timeline_kernels.session_terms's first pass: reads per reader into bounds[1:] (then a cumulative sum)."""
    cdef Py_ssize_t i, r, n_reporters = interval_bounds.shape[0] - 1
    for i in range(route.shape[0]):
        r = reader[i]
        if (route[i] == core or route[i] == brokered) and 0 <= r < n_reporters \
                and interval_bounds[r] < interval_bounds[r + 1]:
            bounds[r + 1] += 1
    for r in range(n_reporters):
        bounds[r + 1] += bounds[r]


def fill_session_terms(const signed char[:] route, const int[:] reader, const double[:] left_at,
                       const double[:] done_at, double horizon, signed char core, signed char brokered,
                       const double[:] interval_start, const double[:] interval_end,
                       const long long[:] interval_bounds, const long long[:] bounds,
                       double[:] inside, double[:] overtime):
    """sim.timeline_kernels.session_terms's second pass: each read's hours inside its session and past its end."""
    cdef Py_ssize_t i, at_r, r, n_reporters = interval_bounds.shape[0] - 1
    cdef double start, end, session_end
    cdef long long[:] at = np.array(bounds[:n_reporters], dtype=np.int64)
    # each reader's interval of its previous read
    cdef long long[:] last = np.array(interval_bounds[:n_reporters], dtype=np.int64)
    for i in range(route.shape[0]):
        r = reader[i]
        if (route[i] == core or route[i] == brokered) and 0 <= r < n_reporters \
                and interval_bounds[r] < interval_bounds[r + 1]:
            start = left_at[i]
            end = minimum(done_at[i], horizon)
            last[r] = interval_of(interval_start, interval_bounds[r], interval_bounds[r + 1], start, last[r])
            session_end = interval_end[last[r]]
            at_r = at[r]
            inside[at_r] = minimum(end, session_end) - start
            overtime[at_r] = maximum(end - session_end, 0.0)
            at[r] = at_r + 1


# Python entry points to the scalar helpers, for the unit tests that compare them with numpy
def grid_index(const double[:] grid, double value) -> int:
    return first_at_or_above(grid, value)


def interval_index(const double[:] starts, Py_ssize_t lo, Py_ssize_t hi, double value, Py_ssize_t guess) -> int:
    return interval_of(starts, lo, hi, value, guess)


def scalar_minimum(double a, double b) -> float:
    return minimum(a, b)


def scalar_maximum(double a, double b) -> float:
    return maximum(a, b)


def place_exams(const long long[:] key, long long[:] next_position, int[:] position):
    """sim.worklist.Worklists: each exam's position, its queue's next free slot (`next_position[key]`, which
    starts at the queue's first position and is advanced): a stable counting sort by queue key, so each
    queue keeps exam (acquisition) order, as the stable argsort it replaced."""
    cdef Py_ssize_t i, k
    for i in range(key.shape[0]):
        k = key[i]
        position[i] = <int>next_position[k]
        next_position[k] += 1


def fill_worklists(const int[:] position, const double[:] arrival, const double[:] work_hours,
                   const long long[:] patient, double[:] times, double[:] work, int[:] episode,
                   unsigned char[:] in_episode):
    """sim.worklist.Worklists: each exam's acquisition time and work at its position and, when `episode`
    has room (episodes with several exams), its episode's ordinal (runs of one patient in exam order)
    and whether the episode holds other exams."""
    cdef Py_ssize_t i, p, n = position.shape[0]
    cdef int ordinal = -1
    cdef bint episodes = episode.shape[0] > 0
    for i in range(n):
        p = position[i]
        times[p] = arrival[i]
        work[p] = work_hours[i]
        if episodes:
            if i == 0 or patient[i] != patient[i - 1]:
                ordinal += 1
            episode[p] = ordinal
            in_episode[p] = (i > 0 and patient[i] == patient[i - 1]) or (i + 1 < n and patient[i] == patient[i + 1])


# -- the broker's hourly arithmetic (sim.policies.brokered.TheBroker) -------------------------------------------

cdef inline void _sort_descending(long long[:] items, double[:] values, Py_ssize_t n):
    """Stable sort of items[:n] (with their values) by value, largest first: Python's sort by -value.
    Insertion sort: a handful of items."""
    cdef Py_ssize_t i, j
    cdef long long item
    cdef double value
    for i in range(1, n):
        item, value = items[i], values[i]
        j = i - 1
        while j >= 0 and values[j] < value:
            items[j + 1], values[j + 1] = items[j], values[j]
            j -= 1
        items[j + 1], values[j + 1] = item, value


cdef class BrokerArithmetic:
    """One rebalancing's arithmetic, compiled: the work to cover per skill class, each trust's own cover, and
    the matching of deficits with other trusts' spare hours (sim.policies.brokered documents the rules and
    holds the fixed structures: classes, keys, buckets, takers). The same IEEE operations in the same order
    as the Python it replaced (tests/broker_reference.py), so every grant is bit-identical. Measured on a
    consortium-year (brokered_home): 38 us a rebalancing in numpy calls and loops on cold caches, 7 us here.
    Holds what the rebalancings carry over: arrivals counted so far per queue, and the forecast's history."""

    cdef const double[:] arrival
    cdef const int[:] queue_of_exam
    cdef const double[:] cumulative
    cdef long long[:] arrived
    cdef double[:, :] history
    cdef Py_ssize_t history_start, history_count, next_exam, n_queues, n_groups, n_deficits
    cdef const long long[:] group_of_queue
    cdef const long long[:] own_start, own_keys, bucket_start, bucket_classes
    cdef const long long[:] taker_start, taker_receiver, taker_key, taker_pair, donor
    cdef list pairs
    cdef double[:] by_class, spare, todo_hours, deficit_hours, granted_hours, key_spare
    cdef long long[:] todo_classes, deficit_classes, granted_pairs, slot_of_pair, keys

    def __init__(self, const double[:] arrival, const int[:] queue_of_exam, const double[:] cumulative,
                 const long long[:] first_positions, Py_ssize_t history_length, const long long[:] group_of_queue,
                 Py_ssize_t n_groups, Py_ssize_t n_keys, list own_keys, list buckets, list donor, list takers,
                 list pairs):
        """`arrival`: exams' acquisition times, sorted; `queue_of_exam`: each exam's queue (n_queues: none);
        `first_positions`: each queue's first position (nothing acquired yet); `history_length`: rebalancings
        the arrivals forecast looks back, plus one; `n_keys`: planned-hours keys; `own_keys[g]`, `buckets[b]`,
        `donor[g]` and `takers[g]` (receiver, key, pair index): as sim.policies.brokered._Balance builds them;
        `pairs[i]`: that pair's (donor, receiver)."""
        self.arrival, self.queue_of_exam, self.cumulative = arrival, queue_of_exam, cumulative
        self.n_queues = first_positions.shape[0]
        self.arrived = np.array(first_positions, dtype=np.int64)
        self.history = np.zeros((max(history_length, 1), self.n_queues))
        self.history_start = self.history_count = self.next_exam = 0
        self.group_of_queue = group_of_queue
        self.n_groups = n_groups
        self.own_start, self.own_keys = _flatten(own_keys)
        self.bucket_start, self.bucket_classes = _flatten(buckets)
        self.taker_start, self.taker_key = _flatten([[k for _, k, _ in row] for row in takers])
        self.taker_receiver = np.array([r for row in takers for r, _, _ in row], dtype=np.int64)
        self.taker_pair = np.array([p for row in takers for _, _, p in row], dtype=np.int64)
        self.donor = np.array(donor, dtype=np.int64)
        self.pairs = pairs
        self.by_class = np.zeros(n_groups)
        self.todo_hours, self.deficit_hours = np.zeros(n_groups), np.zeros(n_groups)
        self.todo_classes, self.deficit_classes = np.zeros(n_groups, np.int64), np.zeros(n_groups, np.int64)
        self.granted_hours = np.zeros(len(pairs))
        self.granted_pairs = np.zeros(len(pairs), np.int64)
        self.slot_of_pair = np.full(len(pairs), -1, np.int64)
        n_own = max([len(row) for row in own_keys] + [0])
        self.keys, self.key_spare = np.zeros(n_own, np.int64), np.zeros(n_own)
        self.spare = np.zeros(n_keys)

    def step(self, list ptr, double now, list plan, list live, double minimum) -> dict:
        """The hours granted per (donor, receiver) at `now`, in the order first granted, given the worklists'
        pointers, the planned hours per key (`plan`) and which trusts are live."""
        self._work_to_cover(ptr, now)
        self._cover_within_trusts(plan)
        return self._match(live, minimum)

    cdef void _work_to_cover(self, list ptr, double now):
        """Per class: reading hours waiting now plus those that arrived over the last lookahead (the forecast),
        summed per queue in queue order (np.bincount's order)."""
        cdef Py_ssize_t lo = self.next_exam, hi = self.arrival.shape[0], mid, i, q, row, n = self.n_queues
        cdef long long p, arrived
        cdef double arrived_work, need
        while lo < hi:  # np.searchsorted(arrival, now, side="right") from the last stop (time only moves on)
            mid = (lo + hi) // 2
            if self.arrival[mid] <= now:
                lo = mid + 1
            else:
                hi = mid
        for i in range(self.next_exam, lo):
            q = self.queue_of_exam[i]
            if q < n:  # the parked segment's dummy queue counts nothing
                self.arrived[q] += 1
        self.next_exam = lo
        cdef Py_ssize_t capacity = self.history.shape[0]
        if self.history_count < capacity:  # a deque with maxlen: append, dropping the oldest when full
            row = (self.history_start + self.history_count) % capacity
            self.history_count += 1
        else:
            row = self.history_start
            self.history_start = (self.history_start + 1) % capacity
        for i in range(self.n_groups):
            self.by_class[i] = 0.0
        for q in range(n):
            arrived = self.arrived[q]
            p = ptr[q]
            arrived_work = self.cumulative[arrived]
            self.history[row, q] = arrived_work
            # waiting now (from the pointer, or nothing if it is past the arrivals), plus the forecast: what
            # arrived since the oldest rebalancing kept
            need = ((arrived_work - self.cumulative[p if p < arrived else arrived])
                    + (arrived_work - self.history[self.history_start, q]))
            self.by_class[self.group_of_queue[q]] += need

    cdef void _cover_within_trusts(self, list plan):
        """Each trust's own planned hours cover its classes, most constrained first, most work first; what is
        left is a deficit (in `deficit_*`, in the order found) and `spare` holds each key's unused hours."""
        cdef Py_ssize_t b, j, n_todo, t, n_keys, m
        cdef long long g, k
        cdef double hours, have, take
        if len(plan) != self.spare.shape[0]:
            raise ValueError(f"{len(plan)} planned hours for {self.spare.shape[0]} keys")
        for k in range(self.spare.shape[0]):
            self.spare[k] = plan[k]
        self.n_deficits = 0
        for b in range(self.bucket_start.shape[0] - 1):
            n_todo = 0
            for j in range(self.bucket_start[b], self.bucket_start[b + 1]):
                g = self.bucket_classes[j]
                if self.by_class[g] > 0:
                    self.todo_classes[n_todo], self.todo_hours[n_todo] = g, self.by_class[g]
                    n_todo += 1
            _sort_descending(self.todo_classes, self.todo_hours, n_todo)
            for t in range(n_todo):
                g, hours = self.todo_classes[t], self.todo_hours[t]
                n_keys = self.own_start[g + 1] - self.own_start[g]
                for m in range(n_keys):
                    k = self.own_keys[self.own_start[g] + m]
                    self.keys[m], self.key_spare[m] = k, self.spare[k]
                _sort_descending(self.keys, self.key_spare, n_keys)  # the most spare hours first
                for m in range(n_keys):
                    k = self.keys[m]
                    have = self.spare[k]
                    take = have if have < hours else hours
                    self.spare[k] = have - take
                    hours -= take
                    if hours <= 0:
                        break
                if hours > 0:
                    self.deficit_classes[self.n_deficits], self.deficit_hours[self.n_deficits] = g, hours
                    self.n_deficits += 1

    cdef dict _match(self, list live, double minimum):
        """Largest deficit first, each takes other live trusts' spare hours (in candidate order) while it is at
        least `minimum`."""
        cdef Py_ssize_t d, n_todo = 0, t, n_granted = 0, slot
        cdef long long g, k, pair
        cdef double short, have, moved
        for d in range(self.n_deficits):
            g, short = self.deficit_classes[d], self.deficit_hours[d]
            if self.taker_start[g + 1] > self.taker_start[g] and live[self.donor[g]] and not short < minimum:
                self.todo_classes[n_todo], self.todo_hours[n_todo] = g, short
                n_todo += 1
        _sort_descending(self.todo_classes, self.todo_hours, n_todo)
        for d in range(n_todo):
            g, short = self.todo_classes[d], self.todo_hours[d]
            for t in range(self.taker_start[g], self.taker_start[g + 1]):
                if short < minimum:
                    break
                if not live[self.taker_receiver[t]]:
                    continue
                k = self.taker_key[t]
                have = self.spare[k]
                if have <= 0:  # never had spare hours, or they are used up: spare hours only go down
                    continue
                moved = have if have < short else short
                pair = self.taker_pair[t]
                slot = self.slot_of_pair[pair]
                if slot < 0:
                    slot = self.slot_of_pair[pair] = n_granted
                    self.granted_pairs[slot], self.granted_hours[slot] = pair, 0.0
                    n_granted += 1
                self.granted_hours[slot] = self.granted_hours[slot] + moved
                self.spare[k] = have - moved
                short -= moved
        granted = {}
        for slot in range(n_granted):
            pair = self.granted_pairs[slot]
            granted[self.pairs[pair]] = self.granted_hours[slot]
            self.slot_of_pair[pair] = -1
        return granted


def _flatten(rows: list) -> tuple:
    """Rows of integers as (start offsets with a final end, the values in row order)."""
    starts = np.zeros(len(rows) + 1, dtype=np.int64)
    starts[1:] = np.cumsum([len(row) for row in rows])
    return starts, np.array([v for row in rows for v in row], dtype=np.int64)
