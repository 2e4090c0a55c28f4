"""Guide, "Parallel Human Tasks"."""

from shardflow import BaseHumanStep, BaseMachineStep, ParallelGroup


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
            "risk_level": {
                "type": "string",
                "enum": ["low", "medium", "high"],
            },
        },
        "required": ["approved", "risk_level"],
    }


class CheckAllApprovals(BaseMachineStep):
    name = "check_approvals"

    async def execute(self, context):
        # All three must approve
        legal = context.get("legal_approval.approved", False)
        finance = context.get("finance_approval.approved", False)
        security = context.get("security_approval.approved", False)

        all_approved = legal and finance and security
        context.set("all_approved", all_approved)


# Parallel approval workflow
parallel_approvals = ParallelGroup(
    LegalApproval(),
    FinanceApproval(),
    SecurityApproval(),
    callback=CheckAllApprovals(),
)
