"""The data of an instance (:class:`WorkflowContext`) and how joins merge it (:class:`MergeRules`)."""

from shardflow.context.merge import BUILTIN_REDUCERS, MergeRules, Reducer
from shardflow.context.workflow import WorkflowContext, check_input, check_json, common_ancestor

__all__ = ["BUILTIN_REDUCERS", "MergeRules", "Reducer", "WorkflowContext", "check_input",
           "check_json", "common_ancestor"]
