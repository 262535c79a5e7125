"""Handler of ``moderate``: removals and bans by an identity with a role (relay/admin.py)."""

from __future__ import annotations

from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import MODERATE_ACTIONS, Moderate, Ok

from ..admin import ROLES, audit_entry, record_audit
from ..session import Later, Session, check_authenticated
from .table import Answer, HandlerTable

__all__ = ["HANDLERS"]

HANDLERS = HandlerTable()


@HANDLERS.on(Moderate)
async def moderate(session: Session, frame: Moderate) -> Answer:
    user = check_authenticated(session)
    needed = MODERATE_ACTIONS.get(frame.action)
    if needed is None:
        raise ProtocolError(ErrorCode.MALFORMED, f"unknown action {frame.action[:32]!r}; one of "
                            + ", ".join(MODERATE_ACTIONS))
    if ROLES.index(session.role) < ROLES.index(needed):
        record_audit(session, "refused:" + frame.action, frame.target, session.role)
        raise ProtocolError(ErrorCode.FORBIDDEN, f"{frame.action} needs the {needed} role")
    target, action, reason = frame.target, frame.action, frame.reason

    def answer(_: None) -> Ok:
        if action == "ban":
            session.hub.disconnect(target, "banned")  # on every node
        return Ok(id=frame.id)

    audit = audit_entry(session, action, target, reason, user)
    return Later(session.store.moderate(action, target, reason, audit), answer)
