"""The spec mutant catalogue of `pink-codegen verify` (issue 5).

Each mutant re-introduces one plausible bug into a copy of `spec/slot.yaml` (text replacements made here, in
the test harness, never shipped) and must be killed by the model checker: the first violation names the
invariant the bug breaks and comes with a shortest counterexample that starts at the policy's ENTER.

Only the slot machine is composed today (no router, no crash/recovery, no account model), so the catalogue
holds the mutants that model can see: `CATALOGUE` on small per-mutant bounds, `CAPABILITY_MUTANTS` on the
`mutants` profile (the model capabilities they need: fills reported after their cancel confirmation, a lagging
stream and REST probe, two fill prices per order, oversized exits, three exit legs). Three more lists keep the
rest honest:

* `SURVIVORS`: plausible bugs verify does NOT kill, each marked `xfail(strict=True)` with the precise missing
  invariant or model capability (a fix turns the xfail into a failure, so the mutant gets promoted); none today;
* `EQUIVALENT`: mutants that change nothing any property can observe, with the reason; kept out of the count;
* `REJECTED_BY_LOADER`: mutants the spec compiler's static checks refuse (overlapping guards, unreachable
  states) before verify ever runs; kept out of the count too.

Bounds are chosen per mutant, as small as still exposes the bug (each check well under a second; the spec
loader's overlap analysis dominates at about 1.5 s per mutant). The `mutants` profile is bigger (about 82,000
states for the spec), but a mutant's shortest counterexample is found after a few thousand.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pink_codegen.errors import SpecError
from pink_codegen.loader import load_machine_text
from pink_codegen.verify.checker import COMPOSED, REACHABILITY, check
from pink_codegen.verify.model import PROFILES, Bounds, ComposedModel

ROOT = Path(__file__).resolve().parents[1]
SLOT_TEXT = (ROOT / "spec" / "slot.yaml").read_text()


def bounds(name: str, max_trades: int = 1, max_lots: int = 1, cancel_budget: int = 0, reject_budget: int = 0,
           duplicate_budget: int = 0, foreign_budget: int = 0, venue_cancel_budget: int = 0) -> Bounds:
    """Small bounds: one trade of one lot, no faults, unless the mutant needs more."""
    return Bounds(name, max_trades=max_trades, max_lots=max_lots, cancel_budget=cancel_budget,
                  reject_budget=reject_budget, duplicate_budget=duplicate_budget, foreign_budget=foreign_budget,
                  venue_cancel_budget=venue_cancel_budget)


ONE_LOT = bounds("one-lot")
PARTIAL_FILLS = bounds("partial-fills", max_lots=2)  # one lot at a time or both: cumulative vs incremental
THREE_LOTS = bounds("three-lots", max_lots=3)  # an entry remainder that fills in two more steps
PARTIAL_CANCEL = bounds("partial-cancel", max_lots=2, cancel_budget=1)  # fills racing one policy cancel
CANCEL = bounds("cancel", cancel_budget=1)
REJECT = bounds("cancel-reject", cancel_budget=1, reject_budget=1)
VENUE_CANCEL = bounds("venue-cancel", venue_cancel_budget=1)  # a venue-side cancel / expiry (TTL)
FOREIGN = bounds("foreign", foreign_budget=1)
DUPLICATES = bounds("duplicates", max_lots=2, duplicate_budget=1)
TWO_TRADES = bounds("two-trades", max_trades=2)
TWO_TRADES_2 = bounds("two-trades-2-lots", max_trades=2, max_lots=2)


@dataclass(frozen=True)
class Edit:
    old: str
    new: str
    count: int = 1  # exact number of occurrences of `old` in spec/slot.yaml (all are replaced)


@dataclass(frozen=True)
class Mutant:
    name: str
    defect: str  # the historic defect (../shared/design/DEFECTS.md) or the property it re-introduces
    bug: str
    edits: tuple[Edit, ...]
    bounds: Bounds
    kills: frozenset[str] = frozenset()  # acceptable names of the first violated invariant
    why_survives: str = ""  # SURVIVORS: the missing invariant or model capability; EQUIVALENT: why

    def text(self) -> str:
        text = SLOT_TEXT
        for e in self.edits:
            found = SLOT_TEXT.count(e.old)
            assert found == e.count, f"{self.name}: anchor found {found} times, expected {e.count}: {e.old!r}"
            text = text.replace(e.old, e.new)
        assert text != SLOT_TEXT, f"{self.name}: the edits change nothing"
        return text


def M(name: str, defect: str, bug: str, edits: Sequence[tuple[str, str] | tuple[str, str, int]], b: Bounds,
      kills: set[str] | None = None, why_survives: str = "") -> Mutant:
    return Mutant(name, defect, bug, tuple(Edit(*e) for e in edits), b, frozenset(kills or ()), why_survives)


# Anchors shared by several mutants (each one exact text of spec/slot.yaml).
EXIT_PNL = ("      realised_pnl_usdt: realised_pnl_usdt + sign(side) * (delta_quote_usdt - basis_usdt)\n"
            "      fees_usdt: fees_usdt + (cum_fee_usdt - exit_order_fee_usdt)\n"
            "      active_leg: active_leg + 1 if leg_done else active_leg\n")
ENTRY_PARTIAL_BOOKING = ("      entry_cost_usdt: cum_quote_usdt\n      entry_fee_usdt: cum_fee_usdt\n"
                         "      fees_usdt: fees_usdt + fee_delta_usdt\n    to: ENTRY_PARTIAL\n")
LATE_ENTRY_FILL = ("    guard: *entry_fill\n    let: *entry_fill_let\n    effect: *entry_fill_effect\n    to: \"=\"\n"
                   "    doc: A late entry fill while exiting")
ENTER_FROM = "  - from: [IDLE, ORDER_REJECTED, TRADE_TERMINAL_WRITTEN]\n    event: ENTER\n    guard: >-\n"
ENTER_GUARD = ("      not entries_frozen and probe_ok and venue_position_lots == 0 and own_fill_age_ms >= "
               "hot_window_ms\n")
EXIT_SIZE = '      size_lots: "min(qty_lots, active_leg_lots) if qty_lots > 0 else active_leg_lots"\n'
REQUESTED_EXIT_SIZE = '      size_lots: "min(exit_wanted_lots, open_lots) if exit_wanted_lots > 0 else open_lots"\n'
REQUESTED_EXIT_EMIT = ("      - PLACE_ORDER: {order: exit_order, role: EXIT, side: side, qty_lots: size_lots, "
                       "reduce_only: true}\n    to: EXIT_SENT\n")
REPORTS_COMMENT = "  # Reports that change nothing: duplicates, stale and foreign orders, contradictions.\n"
EXIT_IDENTITY = ("order == exit_order and order != NO_ORDER and order != entry_order\n"
                 "      and cum_lots > exit_filled_lots")
EXIT_REQUESTED_ENTRY_COMPLETE = (
    "  - from: EXIT_REQUESTED\n    event: FILL\n    guard: *entry_fill_complete\n    let: *entry_fill_let\n"
    "    effect:\n      entry_filled_lots: cum_lots\n      entry_cost_usdt: cum_quote_usdt\n"
    "      entry_fee_usdt: cum_fee_usdt\n      fees_usdt: fees_usdt + fee_delta_usdt\n"
    '      exit_target_lots: "min(exit_wanted_lots, cum_lots - exited_lots) if exit_wanted_lots > 0 else cum_lots - '
    'exited_lots"\n    emit:\n      - PLACE_ORDER: {order: exit_order, role: EXIT, side: side, qty_lots: "min('
    'exit_wanted_lots, cum_lots - exited_lots) if exit_wanted_lots > 0 else cum_lots - exited_lots", reduce_only: '
    "true}\n    to: EXIT_SENT\n    priority: 1\n    doc: >-\n      The entry remainder filled instead of being "
    "cancelled: no cancel confirmation will come, so send the\n      exit now or it would be stranded "
    "(no_stranded_exit).\n")

BOOKS = {"books_match_venue", "booked_at_venue_prices"}

CATALOGUE: tuple[Mutant, ...] = (
    # ------------------------------------------------------------------ D1: leverage never enters PnL
    M("pnl_times_leverage", "D1", "realised PnL of each exit fill multiplied by the trade's leverage",
      [(EXIT_PNL, EXIT_PNL.replace("+ sign(side)", "+ leverage * sign(side)"))], ONE_LOT,
      {"pnl_is_price_change", "closed_pnl_is_price_change"}),
    M("pnl_without_side", "D1", "realised PnL booked as exit quote - basis whatever the side (a short's sign lost)",
      [(EXIT_PNL, EXIT_PNL.replace("+ sign(side) * (delta_quote_usdt - basis_usdt)",
                                   "+ (delta_quote_usdt - basis_usdt)"))], ONE_LOT,
      {"pnl_is_price_change", "closed_pnl_is_price_change"}),
    # ------------------------------------------------------------------ D2 / D4: the venue's fill prices
    M("exit_booked_at_entry_vwap", "D2", "an exit fill booked at a price the slot chose (the entry VWAP, like "
      "the order's nominal protective price) instead of the venue's fill quote",
      [("      delta_quote_usdt: cum_quote_usdt - exit_order_cost_usdt\n",
        "      delta_quote_usdt: delta_lots * entry_vwap_px\n")], ONE_LOT,
      {"booked_at_venue_prices", "closed_pnl_is_price_change"}),
    M("entry_vwap_over_target", "D4", "entry VWAP divided by the lots the entry asked for, not the lots it filled",
      [("    expr: entry_cost_usdt / entry_filled_lots if entry_filled_lots > 0 else 0\n",
        "    expr: entry_cost_usdt / entry_target_lots if entry_target_lots > 0 else 0\n")], PARTIAL_CANCEL,
      {"closed_pnl_is_price_change"}),
    # ------------------------------------------------------------------ D3: routing by order identity
    M("late_entry_fill_booked_as_exit", "D3", "a late fill of the entry remainder while exiting booked as an exit "
      "fill (routed by state, not by order identity)",
      [(LATE_ENTRY_FILL, LATE_ENTRY_FILL.replace(
          "    let: *entry_fill_let\n    effect: *entry_fill_effect\n",
          "    let:\n      delta_lots: cum_lots - exit_filled_lots\n"
          "      delta_quote_usdt: cum_quote_usdt - exit_order_cost_usdt\n"
          "    effect:\n      exit_filled_lots: cum_lots\n      exit_order_cost_usdt: cum_quote_usdt\n"
          "      exited_lots: exited_lots + delta_lots\n      exit_cost_usdt: exit_cost_usdt + delta_quote_usdt\n"))],
      THREE_LOTS, {"exits_within_entry", "exit_order_within_target", "pnl_is_price_change", *BOOKS}),
    M("late_entry_fill_dropped_while_exiting", "D3", "a late entry fill in EXIT_REQUESTED not expected by state, so "
      "refused and never booked",
      [("    except: [ENTRY_SUBMITTED, ENTRY_WORKING, ENTRY_PARTIAL, ENTRY_CANCELLING, IDLE, ORDER_REJECTED, CLOSED, "
        "TRADE_TERMINAL_WRITTEN]\n    event: FILL\n",
        "    except: [ENTRY_SUBMITTED, ENTRY_WORKING, ENTRY_PARTIAL, ENTRY_CANCELLING, IDLE, ORDER_REJECTED, CLOSED, "
        "TRADE_TERMINAL_WRITTEN, EXIT_REQUESTED]\n    event: FILL\n")], THREE_LOTS, BOOKS),
    M("entry_fill_racing_cancel_ignored", "D3", "an entry fill that races our cancel acknowledged but not booked",
      [("    guard: *entry_fill\n    let: *entry_fill_let\n    effect: *entry_fill_effect\n    to: \"=\"\n"
        "    doc: A fill that raced the entry cancel",
        "    guard: *entry_fill\n    to: \"=\"\n    doc: A fill that raced the entry cancel")], PARTIAL_CANCEL, BOOKS),
    M("exit_fill_racing_cancel_ignored", "D3", "an exit fill that races our cancel refused (EXIT_CANCELLING dropped "
      "from the row that books it)",
      [("  - from: [EXIT_CANCELLING, POSITION_OPEN, PARTIALLY_CLOSED]\n    event: FILL\n    guard: *exit_fill\n",
        "  - from: [POSITION_OPEN, PARTIALLY_CLOSED]\n    event: FILL\n    guard: *exit_fill\n")],
      PARTIAL_CANCEL, BOOKS),
    # ------------------------------------------------------------------ D5: re-anchoring
    M("carried_pnl_not_reanchored", "D5", "a new trade starts with the previous trade's realised PnL (settled PnL "
      "not re-anchored, booked twice)",
      [("      closed_basis_usdt: 0\n      realised_pnl_usdt: 0\n", "      closed_basis_usdt: 0\n")], TWO_TRADES,
      {"pnl_is_price_change", "closed_pnl_is_price_change"}),
    M("exited_lots_not_reanchored", "D5", "a new trade starts with the previous trade's exited lots",
      [("      prev_exit_fee_usdt: 0\n      exited_lots: 0\n", "      prev_exit_fee_usdt: 0\n")], TWO_TRADES,
      {"exits_within_entry", "books_match_venue"}),
    M("exit_cumulative_not_reanchored_per_order", "D5/D14", "a new exit order keeps the previous order's cumulative "
      "executed lots, so its first report looks like a duplicate",
      [("      exit_target_lots: size_lots\n      exit_filled_lots: 0\n", "      exit_target_lots: size_lots\n")],
      PARTIAL_FILLS, BOOKS),
    # ------------------------------------------------------------------ D7: foreign fills
    M("foreign_fill_taken_as_entry", "D7", "a fill of an order that is not ours, arriving while the entry works, "
      "attributed to the entry (by symbol)",
      [(REPORTS_COMMENT,
        "  - from: [ENTRY_SUBMITTED, ENTRY_WORKING, ENTRY_PARTIAL, ENTRY_CANCELLING]\n    event: FILL\n"
        "    guard: order != entry_order and order != exit_order and cum_lots > entry_filled_lots and cum_lots <= "
        "entry_target_lots\n    effect:\n      entry_filled_lots: cum_lots\n      entry_cost_usdt: cum_quote_usdt\n"
        "    to: \"=\"\n    priority: 1\n    doc: Mutant.\n" + REPORTS_COMMENT)], FOREIGN,
      {"exits_within_entry", *BOOKS}),
    # ------------------------------------------------------------------ D14: cumulative reports
    M("entry_lots_cumulative_as_incremental", "D14", "the entry's cumulative executed lots added as an increment",
      [("    effect: &entry_fill_effect\n      entry_filled_lots: cum_lots\n",
        "    effect: &entry_fill_effect\n      entry_filled_lots: entry_filled_lots + cum_lots\n")], PARTIAL_FILLS,
      {"exits_within_entry", "books_match_venue", "bounds"}),
    M("entry_quote_cumulative_as_incremental", "D14", "the entry's cumulative quote added as an increment",
      [(ENTRY_PARTIAL_BOOKING, ENTRY_PARTIAL_BOOKING.replace("entry_cost_usdt: cum_quote_usdt",
                                                             "entry_cost_usdt: entry_cost_usdt + cum_quote_usdt"))],
      PARTIAL_FILLS, {"booked_at_venue_prices"}),
    M("exit_lots_cumulative_as_incremental", "D14", "an exit order's cumulative lots added to the trade's exited lots",
      [("      exited_lots: exited_lots + delta_lots\n", "      exited_lots: exited_lots + cum_lots\n", 2)],
      PARTIAL_FILLS,
      {"exits_within_entry", "books_match_venue", "flat_when_free", "closed_means_flat"}),
    M("exit_quote_cumulative_as_incremental", "D14", "an exit order's cumulative quote added to the trade's exit quote",
      [("      exit_cost_usdt: exit_cost_usdt + delta_quote_usdt\n",
        "      exit_cost_usdt: exit_cost_usdt + cum_quote_usdt\n", 2)], PARTIAL_FILLS,
      {"pnl_is_price_change", "booked_at_venue_prices"}),
    M("exit_order_cumulative_as_trade_total", "D14", "the reverse: one exit order's cumulative lots taken as the "
      "trade's exited lots (a second exit order forgets the first)",
      [("      exited_lots: exited_lots + delta_lots\n", "      exited_lots: cum_lots\n", 2)], PARTIAL_FILLS,
      {"books_match_venue", "flat_when_free", "closed_means_flat"}),
    # ------------------------------------------------------------------ D15: single slot, exits sized from the slot
    M("no_single_slot_check", "D15", "ENTER accepted while a position is open: neither the slot's state nor the "
      "venue position gates it",
      [(ENTER_FROM + ENTER_GUARD,
        ENTER_FROM.replace("TRADE_TERMINAL_WRITTEN]", "TRADE_TERMINAL_WRITTEN, POSITION_OPEN, PARTIALLY_CLOSED]")
        + ENTER_GUARD.replace(" venue_position_lots == 0 and", ""))], TWO_TRADES,
      {"one_entry_exposure", "books_match_venue"}),
    M("exit_sized_from_entry_target", "D15", "an exit of the active leg sized from what the entry asked for, not "
      "what it filled (an exit bigger than the open qty)",
      [(EXIT_SIZE, EXIT_SIZE.replace("else active_leg_lots", "else entry_target_lots - exited_lots"))],
      PARTIAL_CANCEL, BOOKS),
    M("requested_exit_sized_from_entry_target", "D15", "the exit sent after the entry cancel sized from the entry's "
      "target, not the final filled qty",
      [(REQUESTED_EXIT_SIZE, REQUESTED_EXIT_SIZE.replace("else open_lots", "else entry_target_lots"))],
      PARTIAL_CANCEL, BOOKS),
    M("exit_target_not_recorded", "D15", "the exit order's size sent to the venue but not recorded, so its fills "
      "look like over-fills",
      [("      exit_wanted_lots: qty_lots\n      exit_target_lots: size_lots\n", "      exit_wanted_lots: qty_lots\n")],
      ONE_LOT, BOOKS),
    # ------------------------------------------------------------------ no_stranded_exit / no_double_entry
    M("partial_entry_cancel_frees_slot", "D9-like", "an entry cancelled while part-filled goes back to IDLE, "
      "forgetting the partial position (a free slot with exposure, as in D9)",
      [("    guard: order == entry_order and entry_filled_lots > 0\n    to: POSITION_OPEN\n",
        "    guard: order == entry_order and entry_filled_lots > 0\n    to: IDLE\n")], PARTIAL_CANCEL,
      {"flat_when_free"}),
    M("exit_expiry_ends_trade", "exit TTL->MARKET", "an exit order cancelled or expired with nothing closed ends "
      "the trade instead of returning to POSITION_OPEN for the MARKET escalation",
      [("    guard: order == exit_order and exited_lots == 0\n    to: POSITION_OPEN\n",
        "    guard: order == exit_order and exited_lots == 0\n    to: IDLE\n")], VENUE_CANCEL, {"flat_when_free"}),
    M("requested_exit_never_sent", "no_stranded_exit", "after the entry cancel, EXIT_REQUESTED moves to EXIT_SENT "
      "without placing the exit",
      [("    emit:\n" + REQUESTED_EXIT_EMIT, "    to: EXIT_SENT\n")], PARTIAL_CANCEL,
      {"flat_reachable"}),
    M("requested_exit_placed_for_pre_fill_qty", "no_stranded_exit", "the exit sent when the entry remainder fills "
      "is sized on the pre-fill open qty (emit and effect disagree)",
      [('qty_lots: "min(exit_wanted_lots, cum_lots - exited_lots) if exit_wanted_lots > 0 else cum_lots - '
        'exited_lots"', 'qty_lots: "min(exit_wanted_lots, open_lots) if exit_wanted_lots > 0 else open_lots"')],
      PARTIAL_FILLS, {"flat_reachable"}),
    M("entry_complete_in_exit_requested_stays", "no_stranded_exit", "the entry remainder filling in EXIT_REQUESTED "
      "is booked as a late entry fill and the slot keeps waiting for a cancel confirmation that never comes",
      [(EXIT_REQUESTED_ENTRY_COMPLETE, "")], PARTIAL_FILLS, {"flat_reachable"}),
    M("entry_complete_while_cancelling_waits", "no_stranded_exit", "an entry that fills completely while our cancel "
      "is pending stays in ENTRY_CANCELLING",
      [("  - from: [ENTRY_SUBMITTED, ENTRY_WORKING, ENTRY_PARTIAL, ENTRY_CANCELLING]\n    event: FILL\n"
        "    guard: &entry_fill_complete",
        "  - from: [ENTRY_SUBMITTED, ENTRY_WORKING, ENTRY_PARTIAL]\n    event: FILL\n    guard: &entry_fill_complete")],
      CANCEL, {"flat_reachable"}),
    M("exit_complete_while_cancelling_waits", "no_stranded_exit", "an exit that fills completely (lots still open) "
      "while our cancel is pending stays in EXIT_CANCELLING (the second bug verify found)",
      [("    effect: *exit_fill_effect\n    to: PARTIALLY_CLOSED\n    doc: >-\n      The exit order filled completely "
        "while its cancel",
        "    effect: *exit_fill_effect\n    to: \"=\"\n    doc: >-\n      The exit order filled completely "
        "while its cancel")], PARTIAL_CANCEL, {"flat_reachable"}),
    M("exit_reject_while_cancelling_waits", "no_stranded_exit", "an exit rejected while our cancel is pending waits "
      "for a cancel confirmation (the first bug verify found)",
      [("  - from: [EXIT_SENT, EXIT_CANCELLING]\n    event: REJECT\n", "  - from: EXIT_SENT\n    event: REJECT\n")],
      REJECT, {"flat_reachable"}),
    # ------------------------------------------------------------------ killed by the invariants added after review
    M("entry_fee_cumulative_as_incremental", "D14", "the entry's cumulative fee added to the trade's fees as an "
      "increment",
      [("      fee_delta_usdt: cum_fee_usdt - entry_fee_usdt\n", "      fee_delta_usdt: cum_fee_usdt\n")],
      PARTIAL_FILLS,
      kills={"fees_match_venue"}),
    M("enter_before_record_durable", "D12", "ENTER accepted in CLOSED, before the trade's terminal record is durable",
      [("[IDLE, ORDER_REJECTED, TRADE_TERMINAL_WRITTEN]", "[IDLE, ORDER_REJECTED, TRADE_TERMINAL_WRITTEN, CLOSED]", 5)],
      TWO_TRADES,
      kills={"record_before_next_trade"}),
    M("entry_reject_while_cancelling_waits", "no_stranded_exit", "an entry rejected while our cancel is pending "
      "waits for a cancel confirmation that never comes",
      [("  - from: [ENTRY_SUBMITTED, ENTRY_CANCELLING]\n    event: REJECT\n",
        "  - from: ENTRY_SUBMITTED\n    event: REJECT\n")], REJECT,
      kills={"slot_free_reachable"}),
    M("exit_request_sends_no_entry_cancel", "no_stranded_exit", "EXIT during a part-filled entry waits in "
      "EXIT_REQUESTED for the entry cancel, but never asks for it",
      [("    emit:\n      - CANCEL_ORDER: {order: entry_order}\n    doc: >-\n      Exit while the entry remainder",
        "    doc: >-\n      Exit while the entry remainder")], PARTIAL_FILLS,
      kills={"cancel_in_flight"}),
)

# The six that survived every profile until the model learnt what they need (issue 5): each is killed on the
# `mutants` profile, which turns those capabilities on (a fill reported after its cancel confirmation, a user
# stream and REST probe that lag the venue, two fill prices per order, oversized exits, three exit legs).
MUTANTS_PROFILE = PROFILES["mutants"]
CAPABILITY_MUTANTS: tuple[Mutant, ...] = (
    M("enter_ignores_hot_window", "D8", "the requote venue-truth gate dropped: ENTER within the hot window of an "
      "own fill",
      [(ENTER_GUARD, ENTER_GUARD.replace(" and own_fill_age_ms >= hot_window_ms", ""))], MUTANTS_PROFILE,
      {"one_entry_exposure"}),  # a lagging fill the REST probe does not show yet: only the hot window stops it
    M("enter_ignores_venue_position", "D15", "ENTER while the venue probe shows a position",
      [(ENTER_GUARD, ENTER_GUARD.replace(" venue_position_lots == 0 and", ""))], MUTANTS_PROFILE,
      {"one_entry_exposure"}),  # a fill reported after its cancel confirmation, once the hot window passed
    M("entry_basis_is_last_fill_price", "D4", "entry basis = the last fill's price instead of the VWAP of all fills",
      [(ENTRY_PARTIAL_BOOKING, ENTRY_PARTIAL_BOOKING.replace(
          "entry_cost_usdt: cum_quote_usdt",
          "entry_cost_usdt: cum_lots * ((cum_quote_usdt - entry_cost_usdt) / (cum_lots - entry_filled_lots))"))],
      MUTANTS_PROFILE, {"booked_at_venue_prices"}),  # an entry's second lot at the second price level
    M("exit_size_not_capped", "D15", "an exit command's size not capped at the active leg / open qty",
      [(EXIT_SIZE, EXIT_SIZE.replace("min(qty_lots, active_leg_lots)", "qty_lots"))], MUTANTS_PROFILE,
      {"books_match_venue", "exits_within_entry", "exit_order_within_target"}),  # EXIT of max_lots + 1 lots
    M("leg_size_not_capped_at_open", "D15", "a non-final exit leg sized at its goal even when fewer lots are open",
      [("min(open_lots, leg_goal_lots - leg_exited_lots)", "leg_goal_lots - leg_exited_lots")], MUTANTS_PROFILE,
      {"books_match_venue", "exits_within_entry", "exit_order_within_target"}),  # 3 legs, an exit that overshot leg 0
    M("late_entry_fill_after_cancel_dropped", "D3", "a fill of the entry order after its cancel was confirmed "
      "(slot back in IDLE) is not booked",
      [("  - from: [IDLE, ORDER_REJECTED, CLOSED, TRADE_TERMINAL_WRITTEN]\n    event: FILL\n",
        "  - from: [ORDER_REJECTED, CLOSED, TRADE_TERMINAL_WRITTEN]\n    event: FILL\n")], MUTANTS_PROFILE,
      BOOKS),  # the cancel confirmation overtakes the fill's report
    # The bug the `mutants` profile found in the spec (fixed): a closed lot's basis taken at the entry VWAP of the
    # moment, so an entry fill booked after an exit (reported after its cancel confirmation, at the second price)
    # re-values the VWAP and the closed trade no longer realises its price change.
    M("exit_basis_is_entry_vwap", "D4", "an exit fill's basis taken at the VWAP of all entry fills rather than the "
      "average price of the lots still open",
      [("      basis_usdt: delta_lots * open_avg_px\n", "      basis_usdt: delta_lots * entry_vwap_px\n", 2)],
      MUTANTS_PROFILE, {"closed_pnl_is_price_change"}),
)

# Plausible bugs verify does not kill yet, each naming the missing invariant or model capability (none today).
SURVIVORS: tuple[Mutant, ...] = ()

KILLED = (*CATALOGUE, *CAPABILITY_MUTANTS)

# Mutants that no property can tell from the spec (kept out of the count).
EQUIVALENT: tuple[Mutant, ...] = (
    M("cancelled_part_exit_to_position_open", "state naming", "an exit order cancelled with part of the position "
      "closed goes to POSITION_OPEN instead of PARTIALLY_CLOSED",
      [("    guard: order == exit_order and exited_lots > 0\n    to: PARTIALLY_CLOSED\n",
        "    guard: order == exit_order and exited_lots > 0\n    to: POSITION_OPEN\n")], PARTIAL_CANCEL,
      why_survives="POSITION_OPEN and PARTIALLY_CLOSED are bisimilar in the spec: every row that takes one takes the "
                   "other with the same guard and effect, and no invariant names either; the spec itself books a late "
                   "exit fill in POSITION_OPEN without leaving it, so `POSITION_OPEN implies exited_lots == 0` is not "
                   "an invariant to add. Only the state name (audit, UI) differs"),
    M("entry_duplicate_reported_as_invalid", "D14", "an exact repeat of the entry's last cumulative report is "
      "refused as INVALID_EVENT instead of DUPLICATE_EVENT",
      [("    guard: order != NO_ORDER and order == entry_order and cum_lots <= entry_filled_lots\n",
        "    guard: order != NO_ORDER and order == entry_order and cum_lots < entry_filled_lots\n")], DUPLICATES,
      why_survives="both outcomes leave the book untouched (cumulative booking is idempotent); only the outcome "
                   "label, which the kernel counts, differs, and no property reads outcomes"),
)

# Plausible bugs the spec compiler refuses before verify runs: (mutant, part of the loader's message).
REJECTED_BY_LOADER: tuple[tuple[Mutant, str], ...] = (
    (M("fee_settlement_priority_dropped", "D14", "the entry fee settlement row loses its priority over the duplicate "
       "row",
       [("    priority: 1\n    doc: The venue settled the entry order's fee;", "    doc: The venue settled the entry "
         "order's fee;")], ONE_LOT), "overlaps"),
    (M("exit_open_qty_check_dropped", "D15", "exit fills not checked against the open qty",
       [("      and exited_lots + (cum_lots - exit_filled_lots) < entry_filled_lots\n", "\n", 3)], ONE_LOT),
     "overlaps"),
    (M("entry_duplicate_guard_dropped", "D14", "entry fills not required to advance the cumulative lots",
       [("order == entry_order and order != NO_ORDER and cum_lots > entry_filled_lots\n",
         "order == entry_order and order != NO_ORDER\n", 2)], ONE_LOT), "overlaps"),
    (M("exit_fills_routed_by_state", "D3", "exit rows book any fill in an exit state (order identity dropped)",
       [(EXIT_IDENTITY, "cum_lots > exit_filled_lots", 4)], ONE_LOT), "overlaps"),
    (M("closed_frees_slot_before_record", "D12", "the closing fill frees the slot at once (TRADE_TERMINAL_WRITTEN "
       "before the record is durable)",
       [("    to: CLOSED\n    doc: The last open lots closed", "    to: TRADE_TERMINAL_WRITTEN\n    doc: The last "
         "open lots closed"),
        ("    to: CLOSED\n    doc: >-\n      A late report of the previous exit order",
         "    to: TRADE_TERMINAL_WRITTEN\n    doc: >-\n      A late report of the previous exit order")], ONE_LOT),
     "unreachable"),
)


@dataclass(frozen=True)
class Outcome:
    """What verify said about one mutant (JSON-able, so the xdist workers of one run can share it)."""

    invariant: str  # the first violated invariant, "" when the mutant survived
    detail: str
    verdict: str  # the invariant's verdict ("VIOLATED")
    trace: tuple[tuple[str, str, str], ...]  # (action, slot state after, outcome)
    states: int
    complete: bool


ALL = {m.name: m for m in (*KILLED, *SURVIVORS, *EQUIVALENT)}


def _verify(mutant: Mutant) -> Outcome:
    result = check(ComposedModel(load_machine_text(mutant.text(), "slot.yaml"), mutant.bounds))
    if not result.violations:
        return Outcome("", "", "", (), result.states, result.complete)
    v = result.violations[0]
    return Outcome(v.invariant, v.detail, result.verdicts[v.invariant], v.trace, result.states, result.complete)


@pytest.fixture(scope="session")
def verify(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Outcome]:
    """Verify a mutant once per test run. Loading a mutated spec dominates (about 1.5 s, the loader's overlap
    analysis), so outcomes are kept in memory and in this run's temporary directory, which pytest-xdist's
    workers of the same run share: the kill matrix does not check again what a worker already checked. The
    outcome is a pure function of the file name's key (mutated text and bounds)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # /tmp/pytest-of-user/pytest-N: this run's directory, shared by its workers only
    folder = root / "verify-mutants"
    folder.mkdir(exist_ok=True)

    @functools.cache
    def get(name: str) -> Outcome:
        mutant = ALL[name]
        key = hashlib.sha256(f"{mutant.text()}\n{mutant.bounds!r}".encode()).hexdigest()[:16]
        path = folder / f"{name}-{key}.json"
        if path.exists():
            data = json.loads(path.read_text())
            return Outcome(**{**data, "trace": tuple(tuple(step) for step in data["trace"])})
        outcome = _verify(mutant)
        partial = path.with_suffix(f".{os.getpid()}.part")
        partial.write_text(json.dumps(dataclasses.asdict(outcome)))
        partial.replace(path)  # atomic: a reader sees the whole outcome or none
        return outcome

    return get


def test_catalogue_is_well_formed() -> None:
    """Names unique, every anchor exact, expected invariants real, survivors explained (no checking: cheap)."""
    everything = [*KILLED, *SURVIVORS, *EQUIVALENT, *(m for m, _ in REJECTED_BY_LOADER)]
    names = [m.name for m in everything]
    assert len(names) == len(set(names))
    spec_invariants = set(yaml.safe_load(SLOT_TEXT)["invariants"])
    known = spec_invariants | set(COMPOSED) | set(REACHABILITY) | {"bounds", "venue_event_handled"}
    for m in everything:
        m.text()  # asserts every anchor occurs exactly as often as declared
        assert m.bug and m.defect
    for m in KILLED:
        assert m.kills and m.kills <= known, (m.name, m.kills - known)
        assert not m.why_survives
    for m in CAPABILITY_MUTANTS:
        assert m.bounds == PROFILES["mutants"], m.name
    for m in (*SURVIVORS, *EQUIVALENT):
        assert not m.kills and m.why_survives
    assert len(CATALOGUE) >= 20


def _params() -> list[object]:
    out: list[object] = [pytest.param(m.name, id=m.name) for m in KILLED]
    out += [pytest.param(m.name, id=m.name, marks=pytest.mark.xfail(strict=True, reason=m.why_survives))
            for m in SURVIVORS]
    return out


@pytest.mark.parametrize("name", _params())
def test_mutant_is_killed_with_a_named_invariant_and_a_shortest_trace(
        name: str, verify: Callable[[str], Outcome]) -> None:
    outcome = verify(name)
    assert outcome.invariant, f"mutant {name} survived ({outcome.states} states, complete={outcome.complete})"
    expected = ALL[name].kills or {"(a named invariant)"}
    assert outcome.invariant in expected, (outcome.invariant, outcome.detail, outcome.trace)
    assert outcome.verdict == "VIOLATED"
    assert outcome.trace, "no counterexample"
    assert outcome.trace[0][0].startswith("policy ENTER"), outcome.trace


@pytest.mark.parametrize("name", [m.name for m in EQUIVALENT])
def test_equivalent_mutant_survives_a_complete_search(name: str, verify: Callable[[str], Outcome]) -> None:
    """The claim that these mutants are equivalent holds within their bounds (else: promote to the catalogue)."""
    outcome = verify(name)
    assert outcome.complete and not outcome.invariant, (outcome.invariant, outcome.detail, outcome.trace)


@pytest.mark.parametrize("name", [m.name for m, _ in REJECTED_BY_LOADER])
def test_loader_rejects_mutant_before_verify(name: str) -> None:
    mutant, message = next((m, msg) for m, msg in REJECTED_BY_LOADER if m.name == name)
    with pytest.raises(SpecError, match=message):
        load_machine_text(mutant.text(), "slot.yaml")


def test_kill_matrix(verify: Callable[[str], Outcome]) -> None:
    """Every catalogued mutant is killed by a named invariant: the 32 of the catalogue and the 7 that need the
    `mutants` profile's capabilities (equivalent mutants are not counted; no survivor is left)."""
    rows: list[tuple[str, str, str, str, int]] = []
    for m in KILLED:
        outcome = verify(m.name)
        rows.append((m.name, m.defect, outcome.invariant or "SURVIVED", m.bounds.name, len(outcome.trace)))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'mutant':{width}}  defect            killed by                   bounds             trace")
    for name, defect, invariant, bound, steps in rows:
        print(f"{name:{width}}  {defect:16}  {invariant:26}  {bound:17}  {steps}")
    for m in (*SURVIVORS, *EQUIVALENT):
        kind = "EQUIVALENT" if m in EQUIVALENT else "SURVIVES"
        print(f"{m.name:{width}}  {m.defect:16}  {kind:26}  {m.bounds.name:17}  {m.why_survives[:60]}...")
    killed = {name: invariant for name, _, invariant, _, _ in rows if invariant != "SURVIVED"}
    assert set(killed) == {m.name for m in KILLED}, sorted({m.name for m in KILLED} - set(killed))
    assert all(killed[m.name] in m.kills for m in KILLED), killed
    assert len(killed) >= 39 and not SURVIVORS
    # The kills are spread over the properties, not one invariant doing all the work.
    assert len(set(killed.values())) >= 6, set(killed.values())
