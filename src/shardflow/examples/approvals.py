"""The guide's parallel human approvals: legal, finance and security review at once, then
``CheckAllApprovals`` decides. Instances wait for people (status ``waiting``)."""

from __future__ import annotations

from typing import Any

from shardflow import (
    BaseHumanStep,
    BaseMachineStep,
    Edge,
    ParallelGroup,
    WorkflowContext,
    WorkflowDefinition,
)


class LegalApproval(BaseHumanStep):
    name = "legal_approval"
    title = "Legal Review Required"
    form_schema = {
        "type": "object",
        "properties": {
            "approved": {"type": "boolean", "title": "Legal Approved?"},
            "concerns": {"type": "string", "title": "Legal Concerns"},
        },
        "required": ["approved"],
    }


class FinanceApproval(BaseHumanStep):
    name = "finance_approval"
    title = "Finance Review Required"
    form_schema = {
        "type": "object",
        "properties": {
            "approved": {"type": "boolean", "title": "Finance Approved?"},
            "budget_code": {"type": "string", "title": "Budget Code"},
        },
        "required": ["approved"],
    }


class SecurityApproval(BaseHumanStep):
    name = "security_approval"
    title = "Security Review Required"
    form_schema = {
        "type": "object",
        "properties": {
            "approved": {"type": "boolean", "title": "Security Approved?"},
            "risk_level": {"type": "string", "enum": ["low", "medium", "high"]},
        },
        "required": ["approved", "risk_level"],
    }


class CheckAllApprovals(BaseMachineStep):
    name = "check_approvals"

    async def execute(self, context: WorkflowContext) -> Any:
        legal = context.get("legal_approval.approved", False)
        finance = context.get("finance_approval.approved", False)
        security = context.get("security_approval.approved", False)
        context.set("all_approved", legal and finance and security)


class SubmitRequest(BaseMachineStep):
    name = "submit"

    async def execute(self, context: WorkflowContext) -> Any:
        context.set("submitted", True)


workflow = WorkflowDefinition(
    name="parallel_approvals",
    steps={
        "submit": SubmitRequest(),
        "approvals": ParallelGroup(
            LegalApproval(), FinanceApproval(), SecurityApproval(), callback=CheckAllApprovals()
        ),
    },
    edges=[Edge("submit", "approvals")],
    initial_step="submit",
    terminal_steps={"approvals"},
)
