"""The dashboard's cluster backend for placement rules, the operator policy, explanations,
N+1 capacity and measured traffic: the operator API's calls, as JSON."""

from __future__ import annotations

from vmgrid.agents.cluster.rules.validate import RuleRequest
from vmgrid.coordinator.web import cluster_json as cj
from vmgrid.coordinator.web.cluster_calls import ClusterCalls, Json
from vmgrid.coordinator.web.errors import not_found
from vmgrid.coordinator.web.traffic_json import cluster_traffic_json


class RuleCalls(ClusterCalls):
    """Rules, policy, explanations and capacity of the cluster (ClusterBackend's part)."""

    # ---- placement rules: the operator API only -------------------------------------------

    async def rules(self) -> Json:
        api = self.runtime.operator.rules
        check = api.check()
        verdicts = {v.rule.rule_id: ("violated", v.reason) for v in check.violations}
        verdicts.update({v.rule.rule_id: ("impossible", v.reason) for v in check.impossible})
        names = self._vm_names()
        return {
            "rules": [
                cj.rule_json(r, names, *verdicts.get(r.rule_id, ("holds", ""))) for r in api.list()
            ]
        }

    async def check_rules(self) -> Json:
        check = self.runtime.operator.rules.check()
        names = self._vm_names()
        return {
            "violations": [
                {"rule": cj.rule_json(v.rule, names, "violated", v.reason), "reason": v.reason}
                for v in check.violations
            ],
            "impossible": [
                {"rule": cj.rule_json(v.rule, names, "impossible", v.reason), "reason": v.reason}
                for v in check.impossible
            ],
            "checked": check.checked,
        }

    async def add_rule(self, request: RuleRequest) -> Json:
        api = self.runtime.operator.rules

        async def go() -> Json:
            return cj.rule_json(api.add(request), self._vm_names())

        return await self._call(go, "rule")

    async def delete_rule(self, rule_id: str) -> Json:
        api = self.runtime.operator.rules

        async def go() -> Json:
            return cj.rule_json(api.delete(rule_id), self._vm_names(), "deleted")

        return await self._call(go)

    # ---- operator policy -------------------------------------------------------------------

    def _own(self, cluster: str) -> None:
        if cluster and cluster != self.cluster_id:
            raise not_found(
                f"this dashboard serves cluster {self.cluster_id!r}, not {cluster!r}", "cluster"
            )

    async def policy(self, cluster: str) -> Json:
        self._own(cluster)
        return {"cluster": self.cluster_id, **self.runtime.operator.policy.get().as_dict()}

    async def set_policy(self, cluster: str, values: dict[str, object]) -> Json:
        self._own(cluster)
        api = self.runtime.operator.policy

        async def go() -> Json:
            return {"cluster": self.cluster_id, **api.set(values).as_dict()}

        return await self._call(go, "body")

    # ---- explanations and capacity --------------------------------------------------------

    async def explain(self, vm: str) -> Json:
        insight = self.runtime.operator.insight

        async def go() -> Json:
            return cj.explanation_json(await insight.explain(vm), self._vm_names())

        return await self._call(go)

    async def n_plus_one(self) -> Json:
        return cj.n_plus_one_json(await self.runtime.operator.insight.n_plus_one())

    async def traffic(self, limit: int) -> Json:
        placed = [(view.node_id, vm) for view in self.state.views() for vm in view.vms]
        return cluster_traffic_json(self.cluster_id, placed, self.state.traffic, limit)
