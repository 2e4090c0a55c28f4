"""The data of an instance (:class:`WorkflowContext`), how joins merge it (:class:`MergeRules`),
and the records of its step executions (:class:`StepExecution`)."""

from shardflow.context.history import InstanceInfo, StepExecution
from shardflow.context.merge import BUILTIN_REDUCERS, MergeRules, Reducer
from shardflow.context.workflow import WorkflowContext, check_input, check_json, common_ancestor

__all__ = ["BUILTIN_REDUCERS", "InstanceInfo", "MergeRules", "Reducer", "StepExecution",
           "WorkflowContext", "check_input", "check_json", "common_ancestor"]
