"""Policies: the reference policy (a reference, not trading advice) and the loader for user policies.

The port itself (`Policy`, `MarketView`, `SlotView`, `Decision`) lives in `pink_fsm.ports`.
"""

from pink_fsm.policy.config import ReferencePolicyConfig
from pink_fsm.policy.dc_gate import DcGate
from pink_fsm.policy.exits import ExitRule, ExitSignal, exit_signal
from pink_fsm.policy.loader import ENTRY_POINT_GROUP, PolicyLoadError, load_policy
from pink_fsm.policy.picker import AssetPicker, Candidate
from pink_fsm.policy.reference import ReferencePolicy, reference_policy
from pink_fsm.policy.signals import AssetHistory
from pink_fsm.policy.sizer import AlphaSizer

__all__ = [
    "ENTRY_POINT_GROUP",
    "AlphaSizer",
    "AssetHistory",
    "AssetPicker",
    "Candidate",
    "DcGate",
    "ExitRule",
    "ExitSignal",
    "PolicyLoadError",
    "ReferencePolicy",
    "ReferencePolicyConfig",
    "exit_signal",
    "load_policy",
    "reference_policy",
]
