# wod_events: the stdout callback the wod toolkit reads (scripts/backend/ansible.ts).
#
# One JSON object per line on stdout, written as each result arrives, so a long run can be followed:
#   {"event": "task", "task": NAME, "host": HOST, "status": "ok|failed|skipped|unreachable", "result": {...}}
#   {"event": "stats", "stats": {HOST: {"ok": N, "changed": N, "failures": N, ...}}}
#   {"event": "task_start", "task": NAME, "path": FILE:LINE, "action": MODULE, "handler": BOOL}
# Task results carry the task's "path" and "action" too (the step log of `wod install` groups tasks
# by file and times them from their task_start).
# It ships with the repository so the toolkit needs nothing beyond ansible-core. Results of tasks marked
# no_log arrive here already censored by Ansible (TaskResult.clean_copy).
from __future__ import annotations

DOCUMENTATION = """
    name: wod_events
    type: stdout
    short_description: JSON lines of task results and final stats for the wod toolkit
    description:
      - Writes one JSON object per task result and one with the play recap.
"""

import json

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "wod_events"

    def _emit(self, obj):
        self._display.display(json.dumps(obj, default=str, sort_keys=False))

    def _result(self, result, status):
        clean = result.clean_copy()._result if hasattr(result, "clean_copy") else dict(result._result)
        self._clean_results(clean, result._task.action)
        self._emit({
            "event": "task",
            "task": result._task.get_name(),
            "host": result._host.get_name(),
            "status": status,
            "path": result._task.get_path(),
            "action": result._task.action,
            "result": clean,
        })

    def _start(self, task, handler):
        self._emit({
            "event": "task_start",
            "task": task.get_name(),
            "path": task.get_path(),
            "action": task.action,
            "handler": handler,
        })

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task, False)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task, True)

    def v2_runner_on_ok(self, result):
        self._result(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        summary = {}
        for host in sorted(stats.processed.keys()):
            s = stats.summarize(host)
            summary[host] = {
                "ok": s["ok"],
                "changed": s["changed"],
                "failures": s["failures"],
                "unreachable": s["unreachable"],
                "skipped": s["skipped"],
                "rescued": s["rescued"],
                "ignored": s["ignored"],
            }
        self._emit({"event": "stats", "stats": summary})
