"""The rotation engine: one rotation as public, composable steps that every door drives.

:class:`Engine` chains the steps for the CLI and the daemon; the Lambda calls the same steps one
per Secrets Manager step. See docs/architecture.md ("One rotation").
"""

from rotator.engine.current import AdminCredential, Current, Minted
from rotator.engine.records import AfterNextRotation, Overlap, RetirePolicy, next_record, rotation_metadata
from rotator.engine.results import RotationError, RotationResult, RotationStep, StepHook, SweepResult
from rotator.engine.rotation import BeforeMint, Engine, Fence
from rotator.engine.steps import RotationSteps

__all__ = [
    "AdminCredential",
    "AfterNextRotation",
    "BeforeMint",
    "Fence",
    "Current",
    "Engine",
    "Minted",
    "Overlap",
    "RetirePolicy",
    "RotationError",
    "RotationResult",
    "RotationStep",
    "RotationSteps",
    "StepHook",
    "SweepResult",
    "next_record",
    "rotation_metadata",
]
