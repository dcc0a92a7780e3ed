"""Canary analysis for `canary run`: pure logic over plain data, no tool calls.

- `promql`: the queries (Istio's standard metrics, as Flagger writes them);
- `prometheus`: where Prometheus is and what its HTTP API answers mean;
- `decision`: one interval's measurement judged pass, fail or inconclusive;
- `schedule`: the run's steps, failure counting, and the state kept on the VirtualService
  (resume point, owner and lease of a run).
"""
